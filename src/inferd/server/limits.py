"""Request admission: the API key, the body size limit (checked while the body streams in), disconnects."""

from __future__ import annotations

import asyncio
import hmac
import re
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ServerError
from .respond import error_response, openai_error_response

T = TypeVar("T")

# With an API key, the only routes answered without it: a load balancer's probe must not hold the key. Model
# lists, status, info, /metrics (its labels name the models), the schema and the docs all need it.
PUBLIC_PATHS = frozenset({"/health"})
# Routes that answer errors in OpenAI's envelope (see app.py): the /v1 routes and TEI's /embeddings alias.
_OPENAI_PATH = re.compile(r"(?:^|/)v1/|^/embeddings$")


def unauthorized() -> ServerError:
    return ServerError(
        "Missing or wrong API key: send `Authorization: Bearer <key>`.",
        "unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )


def has_api_key(headers: Headers, api_key: str) -> bool:
    """TGI's rule: `Authorization: Bearer <key>`, the scheme case-insensitive, compared in constant time."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


class ApiKeyGate:
    """The one auth policy: every HTTP request but those to PUBLIC_PATHS needs the key, whatever its route,
    method or model id, before any route runs (so a refused request costs no metrics series and no model
    lookup, and a route added later is covered without a word). Sits inside CORS: preflights need no key."""

    def __init__(self, app: ASGIApp, api_key: str, public: frozenset[str] = PUBLIC_PATHS) -> None:
        self.app = app
        self.api_key = api_key
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in self.public
            or has_api_key(Headers(scope=scope), self.api_key)
        ):
            await self.app(scope, receive, send)
            return
        render = openai_error_response if _OPENAI_PATH.search(scope["path"]) else error_response
        await render(unauthorized())(scope, receive, send)


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
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(timeout_s):  # no task per request, unlike wait_for
                await receive()
        else:
            await asyncio.wait_for(receive(), timeout_s)
    except ClientDisconnect:  # gone mid-body: nobody to answer, and not the server's fault (499, not 500)
        raise ClientGone() from None
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
