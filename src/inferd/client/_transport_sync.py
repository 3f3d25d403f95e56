"""The sync HTTP transport: one urllib3 pool per client (measured about twice as fast as httpx.Client
for small calls). Same names as `_transport_async.py`, so the generated sync client calls it identically.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping
from typing import Any, TypeVar

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from ._common import LineDecoder, Response, TransportError, TransportTimeout, environment_proxies, proxy_for

T = TypeVar("T")
# A generator the client closes itself (so a stream left early gives its connection back).
Stream = Generator[T, None, None]

sleep = time.sleep


def gather(*results: T) -> list[T]:
    # The async twin runs calls concurrently; here each call already ran when its argument was evaluated.
    return list(results)


def _translate(exc: BaseException) -> Exception:
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError, but a refusal
        return TransportError(str(exc))
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)):
        return TransportTimeout(str(exc))
    return TransportError(str(exc) or type(exc).__name__)


_ERRORS = (HTTPError, OSError)
# Redirects are followed (GETs of input URLs move to CDNs); nothing else is retried here: the client decides.
_RETRIES = urllib3.Retry(
    total=None, connect=0, read=0, status=0, other=0, redirect=5, raise_on_redirect=False
)


class SyncStreamResponse:
    """An open response whose body is read line by line; `close()` gives the connection back."""

    def __init__(self, response: Any, url: str) -> None:
        self._response = response
        self.url = url
        self.status_code: int = response.status
        self.headers: Mapping[str, str] = response.headers
        self._done = False

    def read(self) -> Response:
        try:
            content = self._response.read()
        except _ERRORS as exc:
            raise _translate(exc) from exc
        finally:
            self._response.release_conn()
        return Response(self.status_code, self.headers, content, self.url)

    def lines(self) -> Iterator[str]:
        decoder = LineDecoder()
        try:
            while True:
                chunk = self._response.read1(65536)  # what has arrived: tokens are not held back
                if not chunk:
                    self._done = True
                    break
                yield from decoder.feed(chunk)
        except _ERRORS as exc:
            raise _translate(exc) from exc
        yield from decoder.flush()

    def close(self) -> None:
        if not self._done:
            self._response.close()  # an abandoned stream: drop the connection rather than drain it
        self._response.release_conn()


class SyncTransport:
    def __init__(self, *, proxies: str | Mapping[str, str] | None = None, trust_env: bool = True) -> None:
        self._proxies = proxies
        self._env_proxies = environment_proxies(trust_env)
        self._pool = urllib3.PoolManager(num_pools=32, maxsize=32)
        self._proxy_pools: dict[str, urllib3.ProxyManager] = {}

    def _manager(self, url: str) -> urllib3.PoolManager:
        proxy = proxy_for(url, self._proxies, self._env_proxies)
        if proxy is None:
            return self._pool
        if proxy not in self._proxy_pools:
            self._proxy_pools[proxy] = urllib3.ProxyManager(proxy, num_pools=8, maxsize=32)
        return self._proxy_pools[proxy]

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
        stream: bool,
    ) -> Any:
        return self._manager(url).urlopen(
            method,
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=_RETRIES,
            preload_content=not stream,
        )

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float | None
    ) -> Response:
        try:
            response = self._send(method, url, headers, body, timeout, False)
        except _ERRORS as exc:
            raise _translate(exc) from exc
        return Response(response.status, response.headers, response.data, url)

    def stream(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float | None
    ) -> SyncStreamResponse:
        try:
            response = self._send(method, url, headers, body, timeout, True)
        except _ERRORS as exc:
            raise _translate(exc) from exc
        return SyncStreamResponse(response, url)

    def close(self) -> None:
        self._pool.clear()
        for pool in self._proxy_pools.values():
            pool.clear()
