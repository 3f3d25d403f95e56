"""Connection hygiene on a real uvicorn (issue 10 row 11): heads and bodies have deadlines; idle sockets go."""

import asyncio

import uvicorn
from appkit import free_port, make_app

from inferd.server import limits
from inferd.server.connections import with_header_timeout


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing (b"" when it just closed)."""
    return await asyncio.wait_for(reader.read(), 20)


async def test_slow_heads_idle_sockets_and_slow_bodies_are_cut(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "BODY_TIMEOUT_S", 0.5)
    app, _, _ = make_app(tmp_path)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", http=with_header_timeout(0.5)
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        # Connects and says nothing: closed once the head deadline passes.
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
        # Sends its head one byte at a time, never finishing: closed too.
        slow_r, slow_w = await asyncio.open_connection("127.0.0.1", port)
        slow_w.write(b"P")
        # A complete head, then a body that never completes: 408 in the error envelope.
        body_r, body_w = await asyncio.open_connection("127.0.0.1", port)
        body_w.write(
            b"POST /models/toy/text HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nConnection: close\r\n\r\n{"
        )
        assert await _closed_by_server(idle_r) == b""
        assert await _closed_by_server(slow_r) == b""
        answer = await _closed_by_server(body_r)
        assert answer.startswith(b"HTTP/1.1 408") and b'"error_type":"bad_request"' in answer, answer
        # A normal client is served all along.
        ok_r, ok_w = await asyncio.open_connection("127.0.0.1", port)
        ok_w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await _closed_by_server(ok_r)).startswith(b"HTTP/1.1 200")
        for w in (idle_w, slow_w, body_w, ok_w):
            w.close()
    finally:
        server.should_exit = True
        await task
