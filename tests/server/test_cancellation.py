"""On a real uvicorn: a request whose client leaves stops its work, so the next request does not wait behind it.

Asserted on work done (batch chunks run, tokens generated), never on wall time."""

import asyncio

import httpx
from appkit import serving


async def _until(condition, what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _leave(client: httpx.AsyncClient, path: str, body: dict, started) -> None:
    """Send a request and go away (close the connection) once `started()` says its work is under way."""
    request = asyncio.create_task(client.post(path, json=body))
    await _until(started, f"work started for {path}")
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)


async def test_an_abandoned_big_batch_stops_at_the_next_chunk(tmp_path):
    # 40 texts in chunks of 2 on a model taking 0.5 s per call: 20 chunks (10 s) if nothing stopped them.
    async with serving(tmp_path, max_batch_size=2) as (url, backend):
        slow = backend.models["toy/slow"]
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            texts = [f"text {i}" for i in range(40)]
            await _leave(client, "/models/toy/slow", {"inputs": texts}, lambda: slow.batches)
            r = await client.post("/models/toy/slow", json={"inputs": "next"})
            assert r.status_code == 200, r.text
    abandoned = [n for _, n in slow.batches[:-1]]
    assert abandoned and set(abandoned) == {2}, (
        slow.batches
    )  # run in chunks of a batch, not as one call of 40
    assert len(abandoned) <= 2, slow.batches  # the chunk running when the client left, at most one more
    assert slow.batches[-1] == ("text-classification", 1)


async def test_an_abandoned_generation_stops_at_its_next_token(tmp_path):
    async with serving(tmp_path) as (url, backend):
        llm = backend.models["toy/slow-llm"]
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = {"inputs": "hi", "parameters": {"max_new_tokens": 4000}}  # 200 s at 50 ms a token
            await _leave(client, "/models/toy/slow-llm/generate", body, lambda: llm.generated >= 2)
            r = await client.post(
                "/models/toy/slow-llm/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 2}}
            )
            assert r.status_code == 200, r.text
            assert r.json()["generated_text"] == " w0 w1"
    assert llm.generated < 10 + 2  # the abandoned one stopped a few tokens after its client left


async def test_a_generation_past_its_timeout_stops_too(tmp_path):
    from inferd.server.settings import ServerSettings

    async with serving(tmp_path, ServerSettings(request_timeout_s=0.3)) as (url, backend):
        llm = backend.models["toy/slow-llm"]
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = {"inputs": "hi", "parameters": {"max_new_tokens": 4000}}
            r = await client.post("/models/toy/slow-llm/generate", json=body)
            assert r.status_code == 504, r.text
            r = await client.post(
                "/models/toy/slow-llm/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 2}}
            )
            assert r.status_code == 200, r.text
    assert llm.generated < 6 + 10 + 2  # 0.3 s is 6 tokens; it did not go on to 4000
