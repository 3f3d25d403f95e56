"""A deadline for request heads on uvicorn's HTTP protocol (issue 10 row 11).

    uvicorn.Config(app, http=with_header_timeout(10.0), timeout_keep_alive=5, limit_concurrency=1000)

uvicorn closes a keep-alive connection idle between requests (`timeout_keep_alive`) but has no deadline for a
request's head: a client that connects and sends nothing, or sends its headers at 1 byte/s, held its socket for
good (20,000 of them reached the fd limit). Here a connection must deliver a complete request head within
`header_timeout_s` of connecting, or of the first byte after a finished response; else it is closed. Bodies have
their own deadline in the app (limits.read_body); `limit_concurrency` caps connections (503 beyond it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .http_protocol import http_protocol_class

HEADER_TIMEOUT_S = 10.0


def with_header_timeout(header_timeout_s: float = HEADER_TIMEOUT_S) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools if installed, else h11; with the JSON error envelope of
    http_protocol.py) with a deadline on request heads."""
    base: Any = http_protocol_class()

    class HeaderTimeoutProtocol(base):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None
        _head_cycle: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and self._between_requests():
                self._arm()  # the first byte of a next request: its head has `header_timeout_s` to arrive
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            return self.cycle is None or bool(self.cycle.response_complete)

        def _arm(self) -> None:
            self._head_cycle = self.cycle
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_deadline)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_deadline(self) -> None:
            self._head_timer = None
            # No new request started since the timer was armed (a new head makes a new cycle): cut it.
            if self.cycle is self._head_cycle and self._between_requests():
                self.transport.close()

    return HeaderTimeoutProtocol
