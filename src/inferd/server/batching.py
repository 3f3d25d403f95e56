"""Dynamic batching as one small object: turn `run(key, list) -> list` into `submit(key, items) -> items`.

It knows nothing about models or protocols (the idea of Ray Serve's `batching.py`, the policy of TEI's queue):
  * requests with an equal `key` (the engine uses task + parameters) share one `run` call;
  * no timer by default: when the worker is free it takes everything waiting right now, up to
    `max_batch_size` items; while a batch runs, new arrivals accumulate into the next one. Idle latency is
    that of a batch of one; under load batches fill by themselves;
  * a token budget as well, when given (TEI's `max_batch_tokens`): `cost(key, inputs)` prices a request when
    it is submitted (on the event loop, so it must be cheap: the engine uses the model's estimate from text
    length), and a batch stops before the request that would take it over `max_batch_tokens`. Many short
    texts then share one batch while long ones come in fewer per batch, so a batch of long texts does not
    hold up every request behind it for seconds. A request over the budget on its own still runs, alone;
  * `prefetch` batches (default one, TEI's channel of capacity 1; off in the engine's settings): while batch N
    runs, batch N+1 is formed and its `run` call already made, so a model that runs its calls one at a time
    in call order (the engine queues them on the model's thread) goes straight from one batch to the next
    instead of waiting for the event loop to fan results out and take the next batch. Timings assume that
    order: a batch's clock starts when the previous one ends;
  * a request carrying several items (a list of sentences to embed) counts as several items and is never split;
  * a waiter whose caller has gone (cancelled future) is dropped before its batch runs: a prefetched batch
    that loses a request is recalled (its `run` call cancelled) and its other requests go back to the queue;
  * with `stop_abandoned`, a running batch whose requests have all gone has its `run` call cancelled (the
    engine then asks the model to stop midway, e.g. a diffusion model between two denoising steps);
  * an error is fanned out to every waiter of the batch; a result list whose length differs from the inputs
    fails the whole batch (results cannot be attributed safely);
  * the queue is bounded: `submit` raises `QueueFullError` at once instead of waiting (the engine answers 429).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """The batcher already holds `max_queue` requests."""


class BatchMismatchError(RuntimeError):
    """`run` returned a number of results different from the number of inputs."""


@dataclass
class BatchInfo:
    """What one `run` call looked like; given to `on_batch` and copied into each waiter's `info` dict."""

    key: Hashable
    items: int
    requests: int
    run_s: float
    queue_s: list[float] = field(default_factory=list)  # per request: submit -> start of its batch
    error: BaseException | None = None


@dataclass(eq=False)
class _Waiter:
    key: Hashable
    inputs: list[Any]
    future: asyncio.Future[list[Any]]
    enqueued: float
    info: dict[str, Any] | None
    cost: int = 0  # tokens, when the batcher has a token budget


@dataclass(eq=False)
class _Flight:
    """A batch whose `run` call has been made (running, or prefetched behind the one running)."""

    waiters: list[_Waiter]
    task: asyncio.Task[None] | None = None
    recalled: bool = False  # cancelled to be formed again: its waiters are back in the queue

    @property
    def requests(self) -> int:
        return len(self.waiters)


RunFn = Callable[[Hashable, list[Any]], Awaitable[list[Any]]]
CostFn = Callable[[Hashable, Sequence[Any]], int]


class Batcher:
    def __init__(
        self,
        run: RunFn,
        *,
        max_batch_size: int = 32,
        max_wait_s: float = 0.0,
        max_queue: int = 256,
        on_batch: Callable[[BatchInfo], None] | None = None,
        split_on: Callable[[BaseException], bool] | None = None,
        prefetch: int = 1,
        max_batch_tokens: int = 0,
        cost: CostFn | None = None,
        stop_abandoned: bool = False,
    ) -> None:
        """`split_on(exc)` true means "this error may come from one request's inputs": the batch is then re-run
        one request at a time so that a bad input fails only its own request. `prefetch`: batches whose `run`
        call is made while one runs (0: the next batch is formed only when the running one is done).
        `max_batch_tokens` (0: none) caps the summed `cost` of a batch's requests."""
        self._run = run
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._split_on = split_on
        self.prefetch = max(0, prefetch)
        self.max_batch_tokens = max(0, max_batch_tokens) if cost is not None else 0
        self._cost = cost
        self.stop_abandoned = stop_abandoned
        self._queue: deque[_Waiter] = deque()
        self._wakeup = asyncio.Event()
        self._landed = asyncio.Event()  # a flight ended: room for the next batch
        self._flights: list[_Flight] = []  # in call order; the first is the one running
        self._last_end = 0.0  # when the latest `run` call returned
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Requests waiting: in the queue, or in a prefetched batch behind the one running."""
        return len(self._queue) + sum(f.requests for f in self._flights[1:])

    @property
    def idle(self) -> bool:
        return not self._queue and not self._flights

    async def submit(
        self, key: Hashable, inputs: Sequence[Any], info: dict[str, Any] | None = None
    ) -> list[Any]:
        """Results for `inputs`, one to one. `info`, when given, receives queue_s, run_s and batch_size."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        waiting = self.queued
        if waiting >= self.max_queue:
            raise QueueFullError(f"{waiting} requests are already waiting")
        inputs = list(inputs)
        cost = self._cost(key, inputs) if self._cost is not None and self.max_batch_tokens else 0
        waiter = _Waiter(
            key, inputs, asyncio.get_running_loop().create_future(), time.monotonic(), info, cost
        )
        self._queue.append(waiter)
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="inferd-batcher")
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # The caller went away: if the batch has not started, it never will for this request.
            waiter.future.cancel()
            try:
                self._queue.remove(waiter)
            except ValueError:
                self._recall(waiter)
                self._abandon(waiter)
            raise

    def _recall(self, gone: _Waiter) -> None:
        """Cancel the prefetched batch holding `gone` and queue its other requests again, first in line.

        Calls run in order, so a batch behind the first in flight has not started; if the model just began it
        (its predecessor's end not yet seen here) the call is not stopped: the work is lost, not the answers."""
        flight = next((f for f in self._flights[1:] if gone in f.waiters), None)
        if flight is None or flight.task is None:
            return
        flight.recalled = True
        self._flights.remove(flight)
        flight.task.cancel()
        self._queue.extendleft(reversed([w for w in flight.waiters if not w.future.done()]))
        self._wakeup.set()
        self._landed.set()

    def _abandon(self, gone: _Waiter) -> None:
        """With `stop_abandoned`: cancel the running batch's call once every request in it has gone."""
        if not self.stop_abandoned or not self._flights:
            return
        running = self._flights[0]
        if (
            gone in running.waiters
            and running.task is not None
            and all(w.future.done() for w in running.waiters)
        ):
            running.task.cancel()

    async def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        flights, self._flights = self._flights, []
        for flight in flights:
            if flight.task is not None:
                flight.task.cancel()
        await asyncio.gather(*(f.task for f in flights if f.task is not None), return_exceptions=True)
        for flight in flights:
            self._settle(flight.waiters, RuntimeError("batcher closed"))
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(RuntimeError("batcher closed"))

    def _take(self, batch: list[_Waiter], size: int) -> int:
        """Move waiting requests with the head's key into `batch`, in arrival order, while they fit (in items,
        and in tokens under a budget)."""
        kept: deque[_Waiter] = deque()
        key = batch[0].key if batch else None
        tokens = sum(w.cost for w in batch)
        full = False
        while self._queue:
            waiter = self._queue.popleft()
            if waiter.future.done():  # cancelled by its caller
                continue
            if full:
                kept.append(waiter)
                continue
            if not batch:
                key = waiter.key
            if waiter.key != key:
                kept.append(waiter)
                continue
            over_tokens = self.max_batch_tokens and tokens + waiter.cost > self.max_batch_tokens
            if batch and (size + len(waiter.inputs) > self.max_batch_size or over_tokens):
                full = True  # stop here to keep arrival order within a key
                kept.append(waiter)
                continue
            batch.append(waiter)
            size += len(waiter.inputs)
            tokens += waiter.cost
        self._queue = kept
        return size

    async def _work(self) -> None:
        while True:
            if len(self._flights) > self.prefetch:
                # Form the next batch only when there is room for it: the later it is formed, the fuller.
                self._landed.clear()
                await self._landed.wait()
                continue
            batch: list[_Waiter] = []
            size = self._take(batch, 0)
            if not batch:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.max_wait_s and self._room(batch, size):
                size = await self._fill(batch, size)
            self._launch(batch)

    def _launch(self, batch: list[_Waiter]) -> None:
        """Run `batch` in its own task; the worker goes on to form the next one."""
        flight = _Flight(batch)
        self._flights.append(flight)
        flight.task = asyncio.get_running_loop().create_task(self._run_batch(flight.waiters))
        flight.task.add_done_callback(lambda task: self._land(flight, task))

    def _land(self, flight: _Flight, task: asyncio.Task[None]) -> None:
        if flight in self._flights:
            self._flights.remove(flight)
        self._landed.set()
        # A flight cancelled before it started (close) never settled its waiters; a bug must not strand them.
        if task.cancelled():
            if not flight.recalled:
                self._settle(flight.waiters, RuntimeError("batch cancelled"))
        elif (error := task.exception()) is not None:
            log.error("Batch for %r failed outside run", flight.waiters[0].key, exc_info=error)
            self._settle(flight.waiters, error)

    def _room(self, batch: list[_Waiter], size: int) -> bool:
        """The batch could take more: below `max_batch_size` items and below the token budget."""
        if size >= self.max_batch_size:
            return False
        return not self.max_batch_tokens or sum(w.cost for w in batch) < self.max_batch_tokens

    async def _fill(self, batch: list[_Waiter], size: int) -> int:
        """Only when max_wait_s > 0: wait a little for more requests of this key (Ray/Triton style)."""
        deadline = batch[0].enqueued + self.max_wait_s
        while self._room(batch, size):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                break
            size = self._take(batch, size)
        return size

    async def _run_batch(self, batch: list[_Waiter]) -> None:
        batch = [w for w in batch if not w.future.done()]
        if not batch:
            return
        if len(batch) > 1 and self._split_on is not None:
            error = await self._run_group(batch, report=False)
            if error is not None and self._split_on(error):
                for waiter in batch:
                    if not waiter.future.done():
                        await self._run_group([waiter])
                return
            self._settle(batch, error)
        else:
            await self._run_group(batch)

    async def _run_group(self, batch: list[_Waiter], report: bool = True) -> BaseException | None:
        """Run one batch; set results, or return the error (settled on the waiters when `report`)."""
        called = time.monotonic()
        inputs = [x for w in batch for x in w.inputs]
        error: BaseException | None = None
        results: list[Any] = []
        try:
            results = list(await self._run(batch[0].key, inputs))
            if len(results) != len(inputs):
                error = BatchMismatchError(f"batch of {len(inputs)} inputs returned {len(results)} results")
                log.error("Batch for %r: %s", batch[0].key, error)
        except Exception as exc:  # fanned out to the waiters; the worker keeps serving
            error = exc
        # A prefetched call waited for the previous one (calls run in order): its batch started when that ended.
        end = time.monotonic()
        start = max(called, min(self._last_end, end))
        self._last_end = end
        run_s = end - start
        info = BatchInfo(
            batch[0].key, len(inputs), len(batch), run_s, [start - w.enqueued for w in batch], error
        )
        for w, queue_s in zip(batch, info.queue_s, strict=True):
            if w.info is not None:
                w.info.update(queue_s=queue_s, run_s=run_s, batch_size=len(inputs))
        if self._on_batch is not None:
            try:
                self._on_batch(info)
            except Exception:
                log.exception("on_batch hook failed")
        if error is None:
            offset = 0
            for w in batch:
                n = len(w.inputs)
                if not w.future.done():
                    w.future.set_result(results[offset : offset + n])
                offset += n
            return None
        if report:
            self._settle(batch, error)
        return error

    @staticmethod
    def _settle(batch: list[_Waiter], error: BaseException | None) -> None:
        if error is None:
            return
        for w in batch:
            if not w.future.done():
                w.future.set_exception(error)
