"""Graceful drain on SIGTERM (issue 10 row 13): stop accepting, let in-flight work finish, end streams properly.

    uvicorn.Server -> DrainingServer(config, drain_timeout_s=30)

uvicorn on SIGTERM closes its listening sockets, closes idle connections and waits `timeout_graceful_shutdown`
for the rest, then cancels them: a stream cut that way ended with a truncated chunked body and no final event.
Here the drain starts with uvicorn's shutdown; streams check `DRAIN.expired` between tokens and, once the drain
time is up, send a final error event (`shutting_down`, 503 + Retry-After semantics) and end their body cleanly,
before uvicorn's own deadline (`DRAIN_MARGIN_S` later) would cut them. One server per process, so one drain.
"""

from __future__ import annotations

import socket
import time

import uvicorn

# Between the drain deadline (streams end themselves) and uvicorn's (it cancels what is left).
DRAIN_MARGIN_S = 2.0


class Drain:
    def __init__(self) -> None:
        self.deadline: float | None = None

    def begin(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + max(0.0, timeout_s)

    def reset(self) -> None:
        self.deadline = None

    @property
    def draining(self) -> bool:
        return self.deadline is not None

    @property
    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


DRAIN = Drain()


class DrainingServer(uvicorn.Server):
    """uvicorn's Server whose shutdown first starts the app's drain; uvicorn waits a little longer than it."""

    def __init__(self, config: uvicorn.Config, drain_timeout_s: float = 30.0) -> None:
        config.timeout_graceful_shutdown = int(drain_timeout_s + DRAIN_MARGIN_S + 0.999)
        super().__init__(config)
        self.drain_timeout_s = drain_timeout_s

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        DRAIN.reset()
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        DRAIN.begin(self.drain_timeout_s)
        try:
            await super().shutdown(sockets)
        finally:
            DRAIN.reset()
