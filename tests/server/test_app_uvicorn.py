"""On a real uvicorn: tokens arrive one by one, and a client leaving stops the generation."""

import asyncio
import json
import threading

import httpx
import pytest
from appkit import serving


@pytest.fixture
async def served(tmp_path):
    async with serving(tmp_path) as (url, backend):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client, backend


async def test_tokens_arrive_one_by_one(served):
    client, backend = served
    load = {"inputs": "hi", "parameters": {"max_new_tokens": 1}}
    assert (await client.post("/models/toy/slow-llm/generate", json=load)).status_code == 200
    model = backend.models["toy/slow-llm"]
    # The model makes each token after the first only once the client has read the one before: a server that
    # held tokens back (buffered into one write) would leave it waiting, and the stream would break.
    model.token_gate = threading.Semaphore(0)
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 5}}
    texts = []
    async with client.stream("POST", "/models/toy/slow-llm/generate_stream", json=body) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                texts.append(json.loads(line[5:])["token"]["text"])
                model.token_gate.release()
    assert texts == [" w0", " w1", " w2", " w3", " w4"]


async def test_client_leaving_a_stream_stops_the_model(served):
    client, backend = served
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 4000}}
    async with client.stream("POST", "/models/toy/slow-llm/generate_stream", json=body) as r:
        seen = 0
        async for line in r.aiter_lines():
            seen += line.startswith("data:")
            if seen == 2:
                break
    model = backend.models["toy/slow-llm"]
    for _ in range(100):
        if model.stopped.is_set():
            break
        await asyncio.sleep(0.02)
    assert model.stopped.is_set() and model.streamed < 100
    # and the server is still fine
    assert (await client.post("/models/toy/llm/generate", json={"inputs": "x"})).status_code == 200


async def test_openai_stream_on_uvicorn_and_a_client_timeout_leaves_the_server_up(served):
    client, _ = served
    body = {
        "model": "toy/slow-llm",
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 3,
        "stream": True,
    }
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = [line async for line in r.aiter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/models/toy/slow", json={"inputs": "x"}, timeout=0.1)
    await asyncio.sleep(0.6)
    assert (await client.post("/models/toy/text", json={"inputs": "x"})).status_code == 200
    assert 'status="499"' in (await client.get("/metrics")).text
