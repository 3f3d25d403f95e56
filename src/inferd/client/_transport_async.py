"""The async HTTP transport: one pooled aiohttp session per client. The sync twin, `_transport_sync.py`,
has the same names, so the generated sync client calls it identically.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from typing import Any, TypeVar

import aiohttp

from ._common import LineDecoder, Response, TransportError, TransportTimeout, environment_proxies, proxy_for

T = TypeVar("T")
# A generator the client closes itself (so a stream left early gives its connection back).
Stream = AsyncGenerator[T, None]

sleep = asyncio.sleep


async def gather(*calls: Awaitable[T]) -> list[T]:
    return list(await asyncio.gather(*calls))


def _timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    # Bounds connecting and each read, like the sync transport (a long stream is fine while tokens flow).
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


def _translate(exc: BaseException) -> Exception:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return TransportTimeout(str(exc) or type(exc).__name__)
    return TransportError(str(exc) or type(exc).__name__)


_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError)


class AsyncStreamResponse:
    """An open response whose body is read line by line; `close()` gives the connection back."""

    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self._response = response
        self.url = url
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> Response:
        try:
            content = await self._response.read()
        except _ERRORS as exc:
            raise _translate(exc) from exc
        finally:
            self._response.release()
        return Response(self.status_code, self.headers, content, self.url)

    async def lines(self) -> AsyncIterator[str]:
        decoder = LineDecoder()
        try:
            async for chunk in self._response.content.iter_any():
                for line in decoder.feed(chunk):
                    yield line
        except _ERRORS as exc:
            raise _translate(exc) from exc
        for line in decoder.flush():
            yield line

    async def close(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()  # an abandoned stream: drop the connection rather than drain it


class AsyncTransport:
    def __init__(self, *, proxies: str | Mapping[str, str] | None = None, trust_env: bool = True) -> None:
        self._proxies = proxies
        self._env_proxies = environment_proxies(trust_env)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # A session belongs to one event loop; a client reused under a new loop gets a new pool.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # proxies are resolved by proxy_for, explicit ones first
            )
            self._loop = loop
        return self._session

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float | None
    ) -> Any:
        session = self._get_session()
        return await session.request(
            method,
            url,
            data=body,
            headers=headers,
            timeout=_timeout(timeout),
            proxy=proxy_for(url, self._proxies, self._env_proxies),
        )

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float | None
    ) -> Response:
        try:
            response = await self._send(method, url, headers, body, timeout)
            try:
                content = await response.read()
            finally:
                response.release()
        except _ERRORS as exc:
            raise _translate(exc) from exc
        return Response(response.status, response.headers, content, url)

    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float | None
    ) -> AsyncStreamResponse:
        try:
            response = await self._send(method, url, headers, body, timeout)
        except _ERRORS as exc:
            raise _translate(exc) from exc
        return AsyncStreamResponse(response, url)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def __del__(self) -> None:
        # A client dropped without close(): free its sockets instead of warning about an unclosed session.
        session = self._session
        if (
            session is not None
            and not session.closed
            and self._loop is not None
            and not self._loop.is_closed()
        ):
            try:
                session.connector.close(abort_ssl=True)  # type: ignore[union-attr]
            except Exception:
                pass
