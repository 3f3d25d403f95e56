"""`make run`: start `inferd serve` with the default models and call every task that has one.

    python -m inferd.tour [--port 8080] [--no-wait]

Each call goes through `inferd.InferenceClient`, as a user's code would. The speech (and its noisy and denoised
versions), the segmentation mask and the upscaled face are saved under ./tour-output/. The server keeps running until Ctrl-C (or exits at once with --no-wait).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path("tour-output")


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def _wait_ready(url: str, server: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"inferd serve exited with code {server.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.25)
    raise SystemExit(f"inferd serve did not answer on {url}/health within {seconds:.0f} s")


def _served_tasks(url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{url}/api/tasks", timeout=10) as r:
        tasks = json.load(r)
    return {name: info["widgetModels"][0] for name, info in tasks.items() if info.get("widgetModels")}


def _sample_photo(name: str) -> Any:
    """A real photo shipped by a package (scikit-image's chelsea the cat, the astronaut), else a drawn one."""
    from PIL import Image, ImageDraw

    try:
        from skimage import data

        return Image.fromarray(getattr(data, name)()).convert("RGB")
    except ImportError:
        image = Image.new("RGB", (320, 240), "skyblue")
        ImageDraw.Draw(image).ellipse((100, 60, 220, 180), fill="orange")
        return image


def _text_image(text: str) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (640, 80), "white")
    try:
        font: Any = ImageFont.load_default(size=36)
    except TypeError:  # Pillow without FreeType sizes
        font = ImageFont.load_default()
    ImageDraw.Draw(image).text((16, 16), text, fill="black", font=font)
    return image


def _short(value: Any, limit: int = 160) -> str:
    if hasattr(value, "shape"):
        return f"array{tuple(value.shape)} {value.dtype}"
    if isinstance(value, bytes):
        return f"<{len(value):,} bytes>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tour(url: str) -> int:
    from inferd import InferenceClient

    OUT.mkdir(exist_ok=True)
    served = _served_tasks(url)
    client = InferenceClient(base_url=url, timeout=300)
    # chelsea the cat to classify, the astronaut to segment, the cameraman for the (weak) YOLOv3-tiny to find
    photo, astronaut, camera = _sample_photo("chelsea"), _sample_photo("astronaut"), _sample_photo("camera")
    speech: dict[str, bytes] = {}

    def text_to_speech() -> Any:
        speech["audio"] = client.text_to_speech("The quick brown fox jumps over the lazy dog.")
        (OUT / "speech.flac").write_bytes(speech["audio"])
        return f"{len(speech['audio']):,} bytes of audio -> {OUT / 'speech.flac'}"

    def image_segmentation() -> Any:
        segments = client.image_segmentation(astronaut)
        if segments:
            segments[0]["mask"].save(OUT / "mask.png")
        return [
            {"label": s["label"], "score": s["score"], "mask": f"-> {OUT / 'mask.png'}"} for s in segments[:1]
        ]

    def audio_to_audio() -> Any:
        import io

        import numpy as np
        import soundfile as sf

        # The tour's own speech with white noise at 5 dB SNR, then denoised: both saved to listen to.
        clean, rate = sf.read(io.BytesIO(speech["audio"]), dtype="float32")
        noise = np.random.default_rng(0).standard_normal(clean.size).astype(np.float32)
        noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10**0.5)
        sf.write(OUT / "noisy.flac", np.clip(clean + noise, -1, 1), rate)
        tracks = client.audio_to_audio(OUT / "noisy.flac")
        (OUT / "denoised.flac").write_bytes(tracks[0]["blob"])
        return [
            {"label": t["label"], "content-type": t["content-type"], "blob": f"-> {OUT / 'denoised.flac'}"}
            for t in tracks
        ]

    def image_to_image() -> Any:
        # The astronaut's face at 64 x 64, upscaled x2 by the super-resolution model.
        face = astronaut.crop((192, 64, 320, 192)).resize((64, 64))
        face.save(OUT / "face-64.png")
        upscaled = client.image_to_image(face)
        upscaled.save(OUT / "face-128.png")
        return f"{face.size} -> {upscaled.size} -> {OUT / 'face-128.png'}"

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("text-classification", lambda: client.text_classification("I love this movie!")),
        (
            "token-classification",
            lambda: client.token_classification("Tim Cook met Angela Merkel in Berlin."),
        ),
        ("feature-extraction", lambda: client.feature_extraction("Today is a sunny day")),
        (
            "sentence-similarity",
            lambda: client.sentence_similarity(
                "Machine learning is so easy.", ["Deep learning is so straightforward.", "I like pizza."]
            ),
        ),
        (
            "zero-shot-classification",
            lambda: client.zero_shot_classification(
                "The central bank raised interest rates.", ["finance", "sports", "cooking"]
            ),
        ),
        ("text-generation", lambda: client.text_generation("The capital of France is", max_new_tokens=12)),
        (
            "summarization",
            lambda: client.summarization(
                "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 and is 330 metres tall."
            ),
        ),
        (
            "question-answering",
            lambda: client.question_answering(
                question="When was the Eiffel Tower completed?",
                context="The Eiffel Tower was completed in 1889.",
            ),
        ),
        (
            "translation",
            # No languages named: a model of one fixed pair refuses them; the default (Bergamot en<->pt)
            # then translates English to Portuguese.
            lambda: client.translation("My name is Wolfgang and I live in Berlin."),
        ),
        ("text-to-speech", text_to_speech),
        ("automatic-speech-recognition", lambda: client.automatic_speech_recognition(speech["audio"])),
        ("audio-classification", lambda: client.audio_classification(speech["audio"])),
        ("audio-to-audio", audio_to_audio),
        ("image-classification", lambda: client.image_classification(photo)[:3]),
        ("object-detection", lambda: client.object_detection(camera)[:3]),
        ("image-segmentation", image_segmentation),
        ("image-to-text", lambda: client.image_to_text(_text_image("Invoice 4521: total 42 EUR"))),
        ("image-to-image", image_to_image),
        (
            "tabular-classification",
            lambda: client.tabular_classification(
                {
                    "sepal length (cm)": ["5.1", "6.7"],
                    "sepal width (cm)": ["3.5", "3.0"],
                    "petal length (cm)": ["1.4", "5.2"],
                    "petal width (cm)": ["0.2", "2.3"],
                }
            ),
        ),
    ]
    print(f"\nTour of {url} ({len(served)} tasks served)\n")
    failed = 0
    for task, call in steps:
        model = served.get(task)
        if model is None:
            print(f"- {task:<30} no model installed for this task (skipped)")
            continue
        if (
            task in ("automatic-speech-recognition", "audio-classification", "audio-to-audio")
            and "audio" not in speech
        ):
            print(f"- {task:<30} needs the text-to-speech output (skipped)")
            continue
        started = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            failed += 1
            print(f"! {task:<30} {type(exc).__name__}: {exc}")
            continue
        print(f"- {task:<30} {_short(result)}  [{model}, {time.perf_counter() - started:.2f} s]")
    if "text-generation" in served:
        try:
            chat = client.chat_completion(
                [{"role": "user", "content": "What is the capital of France?"}], max_tokens=24, temperature=0
            )
            print(f"- {'chat-completion':<30} {chat.choices[0].message.content!r}")
        except Exception as exc:
            failed += 1
            print(f"! {'chat-completion':<30} {type(exc).__name__}: {exc}")
    client.close()
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-wait", action="store_true", help="stop the server after the tour")
    args = parser.parse_args(argv)
    port = _free_port(args.port)
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inferd",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    try:
        _wait_ready(url, server)
        failed = tour(url)
        print(f"\ninferd is serving on {url}")
        print(f'  curl {url}/models/<model-id> -d \'{{"inputs": "I love this movie"}}\'')
        print(
            f"  python -c \"from inferd import InferenceClient; print(InferenceClient(base_url='{url}')"
            ".text_classification('I love this movie'))\""
        )
        print(f"  OpenAI clients: base_url='{url}/v1'   |   models and tasks: {url}/api/tasks")
        print(f"  try every model in the browser: {url}/")
        if args.no_wait:
            return 1 if failed else 0
        print("Press Ctrl-C to stop.")
        server.wait()
        return server.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
