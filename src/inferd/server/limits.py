"""Request admission: the API key, the body size limit (checked while the body streams in), disconnects."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import ClientDisconnect, Request

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


# Longer request targets answer 414. nginx's large_client_header_buffers is 8 KB; real routes are < 300 bytes.
MAX_URL_BYTES = 8192


def url_too_long() -> ServerError:
    return ServerError(
        f"The request URL is over {MAX_URL_BYTES} bytes; this server takes at most that.", status_code=414
    )


def check_client_batch(count: int, limit: int, where: str) -> None:
    """413 when one request carries more inputs than `--max-client-batch-size` (what /info reports)."""
    if count > limit:
        raise ServerError(
            f"`{where}` has {count} items; this server takes at most {limit} inputs per request "
            "(--max-client-batch-size, reported by GET /info as max_client_batch_size).",
            "payload_too_large",
        )


def _too_large(limit: int) -> ServerError:
    return ServerError(
        f"The request body is larger than this server's limit of {limit} bytes.", "payload_too_large"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing with 413 as soon as it passes `limit` (never buffering more than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:  # gone mid-body: nobody to answer, and not the server's fault (499, not 500)
        raise ClientGone() from None
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
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    if watcher in done:
        raise ClientGone()
    raise ServerError(f"The request took longer than {timeout_s:g} s.", "timeout")
