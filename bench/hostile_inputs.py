"""What hostile inputs cost the server now (issue 10, rows 1, 2, 3): time to refuse media bombs, /metrics size.

    PYTHONPATH=src:tests/server python bench/hostile_inputs.py [--ids 2000]

In process, over the toy models of the tests (tests/server/appkit.py): the refusals happen before any model,
so the model does not matter. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from appkit import running
from test_media_limits import png_header, wav_header

from inferd.server.settings import ServerSettings


async def refusal_ms(client, url: str, data: bytes, ctype: str, repeats: int = 50) -> tuple[int, float]:
    times = []
    status = 0
    for _ in range(repeats):
        start = time.perf_counter()
        r = await client.post(url, content=data, headers={"content-type": ctype})
        times.append((time.perf_counter() - start) * 1000)
        status = r.status_code
    return status, statistics.median(times)


async def main(ids: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running(Path(tmp), ServerSettings(api_key="K")) as client:
            auth = {"Authorization": "Bearer K"}
            client.headers.update(auth)
            img = "/models/toy/vision/pipeline/image-classification"
            asr = "/models/toy/audio/pipeline/automatic-speech-recognition"
            for name, url, data, ctype in [
                ("PNG 20000x1 (99 bytes)", img, png_header(20000, 1), "image/png"),
                ("PNG 20000x20000", img, png_header(20000, 20000), "image/png"),
                ("WAV at 1 Hz, 16000 samples", asr, wav_header(1, 16000), "audio/wav"),
                ("WAV at 2^31-1 Hz", asr, wav_header(2**31 - 1, 16000), "audio/wav"),
            ]:
                status, ms = await refusal_ms(client, url, data, ctype)
                print(f"{name}: {status} in {ms:.2f} ms (median of 50, in process)")
            key = {"Authorization": client.headers.pop("Authorization")}  # the ids below go without it
            before = len((await client.get("/metrics", headers=key)).content)
            for i in range(ids):
                await client.post(f"/models/x{i}-{'a' * 200}", json={"inputs": "hi"})
            after = len((await client.get("/metrics", headers=key)).content)
            print(f"/metrics after {ids} unknown-id 401s: {before} -> {after} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=2000)
    asyncio.run(main(parser.parse_args().ids))
