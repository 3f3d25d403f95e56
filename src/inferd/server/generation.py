"""Model threads and the streaming bridge.

Every loaded model gets ONE dedicated worker thread for all its calls (load, predict, generate, stream, close).
Measured on llama.cpp: calls hopping between pool threads ran ~1.6x slower per token (OpenMP thread teams are
per calling thread); on one thread they matched the raw call. One thread per model also serialises calls in
arrival order, which is what a model that cannot batch concurrent generations needs: a second stream waits for
the first to finish, it never interrupts it (llama-cpp-python's server does).

`ModelThread.stream` bridges a sync iterator running on that thread to an async iterator on the event loop
(asyncio queue fed with loop.call_soon_threadsafe). When the consumer stops (aclose, cancellation, client gone)
the producer notices before computing the next step and closes the sync iterator.

`StreamScheduler` is the other path, for models that decode concurrent streams together (`TextGenerator.batched`):
requests join one loop running on the model's thread that admits up to `max_streams` of them, calls `step()` and
fans each step out to its consumer. The loop runs only while a stream is active; then the thread is idle again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..backends import StreamBatch, StreamStep, cancellable

T = TypeVar("T")

_ITEM, _ERROR, _DONE = 0, 1, 2

# Steps a producer may run ahead of its consumer: enough to hide the hand-off between threads, small enough
# that a slow client makes the model wait instead of piling up a whole generation in memory.
STREAM_BUFFER = 16


class ModelThread:
    """One worker thread; jobs run one at a time in submission order."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"inferd-{name}"[:40])
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue `fn(*args)` on the thread without waiting for it."""
        return self._executor.submit(fn, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the thread. Cancelling the caller drops the job if it has not started yet, and
        raises the cancel flag a running one reads (`inferd.backends.cancel_requested`) to stop at its next step."""
        flag = threading.Event()
        try:
            return await asyncio.wrap_future(self._executor.submit(_flagged, flag, fn, *args))
        except asyncio.CancelledError:
            flag.set()
            raise

    async def stream(self, start: Callable[[], Iterator[T]], buffer: int = STREAM_BUFFER) -> AsyncIterator[T]:
        """Iterate `start()` on the thread, yielding its items here as they come."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        stop = threading.Event()
        credit = threading.Semaphore(max(1, buffer))

        def wait_credit() -> bool:
            while not credit.acquire(timeout=0.05):  # wake up now and then to see a stop
                if stop.is_set():
                    return False
            return not stop.is_set()

        def put(kind: int, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def produce() -> None:
            if stop.is_set():  # the consumer left while this stream waited for its turn
                return
            iterator: Iterator[T] | None = None
            try:
                with cancellable(stop):
                    iterator = start()
                    for item in iterator:
                        if not wait_credit():
                            break
                        put(_ITEM, item)
            except BaseException as exc:  # handed to the consumer, re-raised there
                put(_ERROR, exc)
            else:
                put(_DONE, None)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        close()

        job = self._executor.submit(produce)
        try:
            while True:
                kind, value = await queue.get()
                if kind == _ITEM:
                    credit.release()
                    yield value
                elif kind == _ERROR:
                    raise value
                else:
                    return
        finally:
            stop.set()
            job.cancel()

    def shutdown(self) -> None:
        # Never wait: a job stuck in model code must not block the event loop or the server's exit. Jobs already
        # queued (a model's close() behind a last stream) still run.
        self._executor.shutdown(wait=False)


def _flagged(flag: threading.Event, fn: Callable[..., T], *args: Any) -> T:
    with cancellable(flag):
        return fn(*args)


class _Consumer:
    """One stream's request and its way back to the event loop."""

    def __init__(self, prompt: str, parameters: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.prompt, self.parameters, self.loop = prompt, parameters, loop
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.pending = 0  # steps sent but not yet taken by the consumer (guarded by the scheduler's lock)
        self.gone = False  # the consumer left: cancel its sequence

    def put(self, kind: int, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))


class StreamScheduler:
    """Concurrent streams of one model decoded together by a `StreamBatch`, every call on the model's thread.

    Backpressure: a consumer `buffer` steps behind is held (its sequence skips decodes, keeping its KV cells)
    until it catches up; the others go on. The loop only sleeps when every running stream is held.
    """

    def __init__(
        self, thread: ModelThread, batch: StreamBatch, max_streams: int, buffer: int = STREAM_BUFFER
    ):
        self._thread, self._batch = thread, batch
        self._max_streams, self._buffer = max(1, max_streams), max(1, buffer)
        self._cond = threading.Condition()
        self._waiting: deque[_Consumer] = deque()
        self._running = False  # a `_drive` job is queued or running on the thread
        self._closed = False
        self._live: dict[Any, _Consumer] = {}  # touched only by `_drive`, on the thread

    async def stream(self, prompt: str, parameters: Any) -> AsyncIterator[StreamStep]:
        consumer = _Consumer(prompt, parameters, asyncio.get_running_loop())
        with self._cond:
            if self._closed:
                raise RuntimeError("the model was unloaded")
            self._waiting.append(consumer)
            start, self._running = not self._running, True
            self._cond.notify()
        if start:
            self._thread.submit(self._drive)
        try:
            while True:
                kind, value = await consumer.queue.get()
                if kind == _ITEM:
                    with self._cond:
                        consumer.pending -= 1
                        self._cond.notify()
                    yield value
                elif kind == _ERROR:
                    raise value
                else:
                    return
        finally:
            with self._cond:
                consumer.gone = True
                self._cond.notify()

    def close(self) -> None:
        """Free the batch on the thread once the streams still running are done (queued before model.close)."""
        with self._cond:
            self._closed = True
        self._thread.submit(self._batch.close)

    # ---- on the model's thread ------------------------------------------------------------------------------
    def _drive(self) -> None:
        try:
            while self._turn():
                pass
        except BaseException as exc:  # a bug here must not leave consumers waiting forever
            with self._cond:
                stranded, self._waiting = [*self._live.values(), *self._waiting], deque()
                self._live.clear()
                self._running = False
            for consumer in stranded:
                consumer.put(_ERROR, exc)
            raise

    def _turn(self) -> bool:
        """Admit, cancel, decode once and fan out; False when no stream is left (the job ends)."""
        live, batch = self._live, self._batch
        with self._cond:
            gone = [h for h, c in live.items() if c.gone]
            for h in gone:
                del live[h]
            self._waiting = deque(c for c in self._waiting if not c.gone)
            admit: list[_Consumer] = []
            while self._waiting and len(live) + len(admit) < self._max_streams:
                admit.append(self._waiting.popleft())
            if not live and not admit and not gone:
                self._running = False
                return False
            hold = {h for h, c in live.items() if c.pending >= self._buffer}
            if not admit and not gone and len(hold) == len(live):
                self._cond.wait(0.1)  # every stream waits for its consumer: sleep until one reads or leaves
                return True
        for h in gone:
            batch.cancel(h)
        for consumer in admit:
            try:
                live[batch.add(consumer.prompt, consumer.parameters)] = consumer
            except Exception as exc:  # a bad request fails alone, before its first step
                consumer.put(_ERROR, exc)
        if not live:
            return True
        try:
            steps = batch.step(hold)
        except Exception as exc:  # the shared decode failed: every running stream is affected
            for h, failed in live.items():
                with contextlib.suppress(Exception):
                    batch.cancel(h)
                failed.put(_ERROR, exc)
            live.clear()
            return True
        if not steps and hold:
            with self._cond:  # nothing could advance (the rest wait inside the batch): do not spin
                self._cond.wait(0.01)
        for h, step in steps:
            to = live.get(h)
            if to is None:
                continue
            if isinstance(step, Exception):
                del live[h]
                to.put(_ERROR, step)
                continue
            with self._cond:
                to.pending += 1
            to.put(_ITEM, step)
            if step.finish_reason:
                del live[h]
                to.put(_DONE, None)
        return True
