"""A real HTTP server on 127.0.0.1 (aiohttp in a background thread) that replays recorded responses or
misbehaves on purpose, and a `make_client` fixture that runs each test with the sync and the async client.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from inferd import AsyncInferenceClient, InferenceClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf-recorded"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HOP_HEADERS = {"content-length", "connection", "transfer-encoding", "content-encoding", "date"}


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def body_bytes(body: dict[str, Any]) -> bytes:
    if body["kind"] == "base64":
        return base64.b64decode(body["base64"])
    if body["kind"] in ("json", "text"):
        return body["text"].encode()
    return b""


@dataclass
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def reply(status: int = 200, body: Any = b"", headers: dict[str, str] | None = None) -> Handler:
    """A handler answering `body` (bytes, str, or anything JSON)."""
    headers = dict(headers or {})
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    data = body.encode() if isinstance(body, str) else body

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=data, headers=headers)

    return handle


def sse(*events: str, drop_after: int | None = None, headers: dict[str, str] | None = None) -> Handler:
    """A 200 `text/event-stream` of `events` (each already `data:...`), optionally cut after `drop_after`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **(headers or {})})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i, event in enumerate(events):
            if drop_after is not None and i == drop_after:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(f"{event}\n\n".encode())
        await response.write_eof()
        return response

    return handle


def slow(seconds: float, then: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await then(request)

    return handle


async def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering."""
    assert request.transport is not None
    request.transport.abort()
    return web.Response()


class LocalServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Handler]] = {}
        self.seen: list[Seen] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path_qs, request.headers.copy(), body))
        handlers = self.routes.get((request.method, request.path))
        if not handlers:
            return web.json_response({"error": f"no route {request.method} {request.path}"}, status=404)
        handler = handlers.pop(0) if len(handlers) > 1 else handlers[0]
        return await handler(request)

    def add(self, method: str, path: str, *handlers: Handler) -> None:
        """Answer the next requests with `handlers` in turn; the last one answers every request after."""
        self.routes.setdefault((method, path), []).extend(handlers)

    def replay(self, name: str) -> dict[str, Any]:
        """Serve a recorded interaction at its recorded method and path."""
        case = recorded(name)
        path = "/" + case["request"]["url"].split("://", 1)[1].split("/", 1)[1]
        response = case["response"]
        headers = {k: v for k, v in response["headers"].items() if k.lower() not in _HOP_HEADERS}
        self.add(
            case["request"]["method"],
            path.split("?")[0],
            reply(response["status"], body_bytes(response["body"]), headers),
        )
        return case

    def reset(self) -> None:
        self.routes.clear()
        self.seen.clear()


@pytest.fixture(scope="session")
def _server_process() -> Any:
    server = LocalServer()
    yield server
    server.stop()


@pytest.fixture
def server(_server_process: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> LocalServer:
    _server_process.reset()
    # Every hosted URL points at the local server; no real token is ever read.
    monkeypatch.setenv("HF_INFERENCE_ENDPOINT", _server_process.url)
    monkeypatch.setenv("HF_ENDPOINT", _server_process.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return _server_process


@pytest.fixture(params=["sync", "async"])
async def make_client(request: pytest.FixtureRequest, server: LocalServer) -> Any:
    """`make_client(**kwargs)` builds the sync or the async client; all are closed after the test."""
    cls = InferenceClient if request.param == "sync" else AsyncInferenceClient
    made: list[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        client = cls(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await run(client.close())


async def run(value: Any) -> Any:
    """The result of a client call, sync or async."""
    return await value if inspect.isawaitable(value) else value


async def collect(stream: Any) -> list[Any]:
    """Every item of a stream, sync or async."""
    stream = await run(stream)
    if hasattr(stream, "__aiter__"):
        return [item async for item in stream]
    return list(stream)
