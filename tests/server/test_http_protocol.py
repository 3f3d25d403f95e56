"""Requests uvicorn cannot parse are answered in the JSON error envelope, on both of its HTTP protocols.

Issue 10, row 15: a bad Content-Length or a 100 KB path got uvicorn's plain-text 400.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json

import httpx
import pytest
import uvicorn
from appkit import free_port, make_app, running

from inferd.server import http_protocol

PROTOCOLS = [pytest.param(http_protocol.H11EnvelopeProtocol, id="h11")]
if importlib.util.find_spec("httptools") is not None:
    PROTOCOLS.append(pytest.param(http_protocol.HttpToolsEnvelopeProtocol, id="httptools"))


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)  # the server closes after answering
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_unparseable_requests_get_the_json_envelope(tmp_path, protocol):
    app, _, _ = make_app(tmp_path)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on", http=protocol)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        cases = [
            (b"POST /models/toy/text HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
            (b"NOT HTTP AT ALL\r\n\r\n", 400),
            (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", (400, 414)),
            (b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414),
        ]
        for request, expected in cases:
            status, headers, body = await exchange(port, request)
            assert status in (expected if isinstance(expected, tuple) else (expected,)), body
            assert headers["content-type"] == "application/json"
            answer = json.loads(body)
            assert answer["error_type"] == "bad_request" and answer["error"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:  # still serving
            r = await client.post("/models/toy/text", json={"inputs": "I love it"})
            assert r.status_code == 200
    finally:
        server.should_exit = True
        await task


async def test_a_url_over_8_kb_is_a_414_envelope_in_process_too(tmp_path):
    async with running(tmp_path) as client:
        r = await client.get("/models/" + "a" * 9000)
        assert r.status_code == 414 and r.json()["error_type"] == "bad_request"
        assert "8192" in r.json()["error"]
        assert (await client.get("/models/" + "a" * 100 + "/health")).status_code == 404
