"""Request admission: the API key, the body size limit (checked while the body streams in), disconnects."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from .errors import ServerError

T = TypeVar("T")


def check_api_key(request: Request, api_key: str | None) -> None:
    """TGI's rule: `Authorization: Bearer <key>`, the scheme case-insensitive; 401 otherwise."""
    if not api_key:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise ServerError(
            "Missing or wrong API key: send `Authorization: Bearer <key>`.",
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _too_large(limit: int) -> ServerError:
    return ServerError(
        f"The request body is larger than this server's limit of {limit} bytes.", "payload_too_large"
    )


# A body must arrive within this (a client sending 1 byte/s used to hold a connection and its worker for 85 s,
# past the request timeout). 50 MB of media at 2 MB/s fits.
BODY_TIMEOUT_S = 30.0


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The whole body, refusing with 413 as soon as it passes `limit` (never buffering more than that), and with
    408 when it has not arrived within `timeout_s`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    timeout_s = BODY_TIMEOUT_S if timeout_s is None else timeout_s

    async def receive() -> None:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)

    try:
        await asyncio.wait_for(receive(), timeout_s)
    except asyncio.TimeoutError:
        raise ServerError(
            f"The request body did not arrive within {timeout_s:g} s.", "bad_request", status_code=408
        ) from None
    return b"".join(chunks)


class ClientGone(Exception):
    """The caller closed the connection before the answer was ready; its work was cancelled."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T], timeout_s: float | None) -> T:
    """Await `work`, cancelling it when the client goes away (ClientGone) or after `timeout_s` (504).

    Call only once the body has been read: the watcher consumes the request's receive channel.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _stop(task)
        raise
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    await _stop(task)
    if watcher in done:
        raise ClientGone()
    raise ServerError(f"The request took longer than {timeout_s:g} s.", "timeout")


async def _stop(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has stopped: a stream's `anext` still running when the caller closes the
    stream made `aclose()` fail with "asynchronous generator is already running" (a 500 at shutdown)."""
    task.cancel()
    with anyio.CancelScope(shield=True):
        await asyncio.gather(task, return_exceptions=True)
