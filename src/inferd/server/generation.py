"""Model threads and the streaming bridge.

Every loaded model gets ONE dedicated worker thread for all its calls (load, predict, generate, stream, close).
Measured on llama.cpp: calls hopping between pool threads ran ~1.6x slower per token (OpenMP thread teams are
per calling thread); on one thread they matched the raw call. One thread per model also serialises calls in
arrival order, which is what a model that cannot batch concurrent generations needs: a second stream waits for
the first to finish, it never interrupts it (llama-cpp-python's server does).

`ModelThread.stream` bridges a sync iterator running on that thread to an async iterator on the event loop
(asyncio queue fed with loop.call_soon_threadsafe). When the consumer stops (aclose, cancellation, client gone)
the producer notices before computing the next step and closes the sync iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the thread. Cancelling the caller drops the job if it has not started yet."""
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

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
