"""Servers that misbehave on purpose: each gives the documented behaviour, with the sync and the async client."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from aiohttp import web

from inferd import (
    IncompleteGenerationError,
    InferenceConnectionError,
    InferenceTimeoutError,
    InvalidResponseError,
    OverloadedError,
    RetryPolicy,
)
from inferd.client import _common

from .conftest import LocalServer, collect, drop, reply, run, sse

FAST = RetryPolicy(max_retries=2, backoff=0.01)
TOKEN = (
    'data:{"token":{"id":1,"text":"Hi","logprob":-0.1,"special":false},"generated_text":null,"details":null}'
)
LAST = (
    'data:{"token":{"id":2,"text":"!","logprob":-0.2,"special":false},"generated_text":"Hi!","details":null}'
)
LABELS = [[{"label": "POSITIVE", "score": 0.9}]]


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    _common.clear_caches()


def posts(server: LocalServer) -> int:
    return sum(1 for s in server.seen if s.method == "POST")


async def test_slow_server_times_out(server: LocalServer, make_client: Any) -> None:
    # The answer comes only once the test lets it (or after 60 s): a client that waited for it instead of
    # timing out would get it and raise nothing.
    answered = threading.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        for _ in range(600):
            if answered.is_set():
                break
            await asyncio.sleep(0.1)
        return await reply(200, LABELS)(request)

    server.add("POST", "/models/m", held)
    try:
        with pytest.raises(InferenceTimeoutError, match="Inference call timed out"):
            await run(make_client("m", timeout=0.3).text_classification("hi"))
    finally:
        answered.set()


async def test_loading_model_is_waited_for(server: LocalServer, make_client: Any) -> None:
    loading = reply(503, {"error": "Model m is currently loading", "estimated_time": 0.05})
    server.add("POST", "/models/m", loading, loading, reply(200, LABELS))
    assert await run(make_client("m", timeout=5).text_classification("hi")) == LABELS[0]
    assert posts(server) == 3


async def test_loading_model_gives_up_when_the_timeout_runs_out(
    server: LocalServer, make_client: Any
) -> None:
    server.add("POST", "/models/m", reply(503, {"error": "loading", "estimated_time": 0.05}))
    with pytest.raises(
        InferenceTimeoutError, match=r"Model not loaded on the server: .*/models/m\. .*current: 0\.3"
    ):
        await run(make_client("m", timeout=0.3).text_classification("hi"))
    assert posts(server) >= 2  # polled, not given up at the first 503


async def test_429_honours_retry_after(server: LocalServer, make_client: Any) -> None:
    server.add(
        "POST", "/models/m", reply(429, {"error": "slow down"}, {"Retry-After": "0.2"}), reply(200, LABELS)
    )
    start = time.monotonic()
    assert await run(make_client("m").text_classification("hi")) == LABELS[0]
    assert time.monotonic() - start >= 0.2
    assert posts(server) == 2


async def test_retries_are_bounded(server: LocalServer, make_client: Any) -> None:
    server.add(
        "POST",
        "/models/m",
        reply(429, {"error": "slow down", "error_type": "overloaded"}, {"Retry-After": "0"}),
    )
    with pytest.raises(OverloadedError, match="slow down"):
        await run(make_client("m", retry_policy=FAST).text_classification("hi"))
    assert posts(server) == 3  # the call and two retries
    server.seen.clear()
    with pytest.raises(OverloadedError):
        await run(make_client("m", max_retries=0).text_classification("hi"))
    assert posts(server) == 1


async def test_502_is_retried_with_backoff(server: LocalServer, make_client: Any) -> None:
    server.add(
        "POST", "/models/m", reply(502, "bad gateway"), reply(504, "gateway timeout"), reply(200, LABELS)
    )
    assert await run(make_client("m", retry_policy=FAST).text_classification("hi")) == LABELS[0]
    assert posts(server) == 3


async def test_dropped_connection_is_retried(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/models/m", drop, reply(200, LABELS))
    assert await run(make_client("m", retry_policy=FAST).text_classification("hi")) == LABELS[0]
    assert posts(server) == 2


async def test_refused_connection_gives_a_connection_error(server: LocalServer, make_client: Any) -> None:
    with pytest.raises(InferenceConnectionError, match="127.0.0.1:9/models/m"):
        await run(make_client("http://127.0.0.1:9/models/m", retry_policy=FAST).text_classification("hi"))


async def test_connection_dropped_mid_stream_is_not_retried(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/models/m", sse(TOKEN, TOKEN, LAST, drop_after=1), reply(200, LABELS))
    stream = await run(make_client("m", retry_policy=FAST).text_generation("x", stream=True))
    seen: list[str] = []
    with pytest.raises(IncompleteGenerationError, match="cut"):
        if hasattr(stream, "__aiter__"):
            async for token in stream:
                seen.append(token)
        else:
            for token in stream:
                seen.append(token)
    assert seen == ["Hi"]
    assert posts(server) == 1


async def test_error_event_inside_a_200_stream(server: LocalServer, make_client: Any) -> None:
    error = 'data:{"error":"Model is overloaded","error_type":"overloaded"}'
    server.add("POST", "/models/m", sse(TOKEN, error))
    with pytest.raises(OverloadedError, match="Model is overloaded"):
        await collect(make_client("m").text_generation("x", stream=True))


async def test_done_ends_a_stream(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/models/m", sse(TOKEN, "data: [DONE]", "data: not json at all"))
    assert await collect(make_client("m").text_generation("x", stream=True)) == ["Hi"]


async def test_garbage_bodies(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/models/html", reply(200, "<html>oops</html>", {"Content-Type": "text/html"}))
    with pytest.raises(InvalidResponseError, match="Expected JSON .*<html>oops"):
        await run(make_client("html").text_classification("hi"))
    server.add("POST", "/models/list", reply(200, {"not": "a list"}))
    with pytest.raises(ValueError, match="Server output must be a list"):
        await run(make_client("list").object_detection(b"\x89PNG"))
    server.add("POST", "/models/sse", sse("data: {broken"))
    with pytest.raises(ValueError, match="Cannot parse a server-sent event"):
        await collect(make_client("sse").text_generation("x", stream=True))
    server.add("POST", "/models/error", reply(500, b"\x00\xff garbage"))
    with pytest.raises(_common.HfHubHTTPError) as info:
        await run(make_client("error", max_retries=0).text_classification("hi"))
    assert info.value.status_code == 500


async def test_abandoned_stream_releases_its_connection(server: LocalServer, make_client: Any) -> None:
    server_state = {"gone": False}

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for _ in range(200):
                await response.write(f"{TOKEN}\n\n".encode())
                await asyncio.sleep(0.01)
        except (ConnectionError, RuntimeError):
            server_state["gone"] = True
        return response

    server.add("POST", "/models/m", endless)
    client = make_client("m")
    stream = await run(client.text_generation("x", stream=True))
    if hasattr(stream, "__aiter__"):
        assert await stream.__anext__() == "Hi"
        await stream.aclose()
    else:
        assert next(stream) == "Hi"
        stream.close()
    for _ in range(100):
        if server_state["gone"]:
            break
        await asyncio.sleep(0.02)
    assert server_state["gone"], "the server never saw the client leave"
    server.add("POST", "/models/other", reply(200, LABELS))
    assert await run(client.text_classification("hi", model="other")) == LABELS[0]


async def test_proxies_from_the_environment(
    server: LocalServer, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local server plays the proxy: a request for an unresolvable host still reaches it.
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server.add("POST", "/models/m", reply(200, LABELS))
    assert (
        await run(make_client("http://inferd-proxy-test.invalid/models/m").text_classification("hi"))
        == LABELS[0]
    )
    assert json.loads(server.seen[-1].body) == {"inputs": "hi"}
