"""Graceful drain on SIGTERM (issue 10 row 13): stop accepting, let in-flight work finish, end streams properly.

    uvicorn.Server -> DrainingServer(config, drain_timeout_s=30)

uvicorn on SIGTERM closes its listening sockets, closes idle connections and waits `timeout_graceful_shutdown`
for the rest, then cancels them: a stream cut that way ended with a truncated chunked body and no final event.
Here the drain starts with uvicorn's shutdown; streams check `DRAIN.expired` between tokens and, once the drain
time is up, send a final error event (`shutting_down`, 503 + Retry-After semantics) and end their body cleanly,
before uvicorn's own deadline (`DRAIN_MARGIN_S` later) would cut them. A request whose answer has not started
(a long generation, a big batch) is cancelled at the drain deadline instead, its work stopped, and answered 503
`unhealthy` with Retry-After in its protocol's envelope (state.endpoint, through `DRAIN.tracking()` and
`DRAIN.cut_off()`) rather than having its connection cut. One server per process, so one drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import Iterator

import uvicorn

# Between the drain deadline (streams end themselves) and uvicorn's (it cancels what is left).
DRAIN_MARGIN_S = 2.0


class Drain:
    def __init__(self) -> None:
        self.deadline: float | None = None
        self._running: set[asyncio.Task[object]] = set()  # requests whose answer has not started
        self._cut: set[asyncio.Task[object]] = set()  # of those, the ones the drain deadline cancelled
        self._timer: asyncio.TimerHandle | None = None

    def begin(self, timeout_s: float) -> None:
        self.deadline = time.monotonic() + max(0.0, timeout_s)
        self._timer = asyncio.get_running_loop().call_later(max(0.0, timeout_s), self._cut_requests)

    def reset(self) -> None:
        self.deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._cut.clear()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """Around a route handler: at the drain deadline, the task running it is cancelled (see cut_off).
        A set insertion per request: nothing is scheduled unless the server drains."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._running.add(task)
        try:
            yield
        finally:
            self._running.discard(task)

    def cut_off(self) -> bool:
        """In the handler of a CancelledError: True if the drain deadline cancelled this task (the cancellation
        is then taken back: the task goes on to answer 503), False for any other cancellation (re-raise it)."""
        task = asyncio.current_task()
        if task is None or task not in self._cut:
            return False
        self._cut.discard(task)
        if sys.version_info >= (3, 11):  # 3.10 keeps no count of cancellation requests
            task.uncancel()
        return True

    def _cut_requests(self) -> None:
        for task in list(self._running):
            self._cut.add(task)
            task.cancel("the drain time is up")

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
