"""Which models are resident: lazy background loads, coalesced, and an LRU bounded by memory.

A slot per model id holds its state (Loadable -> Loading -> Loaded | Failed), its model, its dedicated thread and
what was measured (load time, resident bytes). The first request to a Loadable model starts one load task;
later requests join it (or get 503 with the time left). Before a load, idle models are evicted least recently
used first until the new one is expected to fit in `max_memory_bytes`.

Eviction cannot livelock (issue 10 row 4: two models that do not fit together, each with waiting clients, used to
evict each other ~97 times a minute while no request succeeded):
  * a model in use is never evicted, and "in use" starts when a request begins to wait for the model's load, so a
    model just loaded serves the requests that waited for it before anything can evict it;
  * when the models in the way are busy, the load waits for them (it never loads past the budget) and they
    *drain*: their new requests wait instead of keeping them busy forever; once idle they are evicted. Each
    swap therefore serves every request that waited for it, and the two models take turns;
  * a turn is long enough to pay for the swap: a model just loaded is drained (or evicted when idle) only
    after `swap_quantum()` (five times the incoming model's load time, 2 s at least, a quarter of
    `room_wait_s` at most), serving new requests meanwhile, unless it had no request for IDLE_GRACE_S. Without
    it, closed-loop clients of two small models (0.3 s loads) made a swap per request: 109 loads of each in a
    minute, as many loads as answers;
  * a load that nobody waits for any more, or that waited `room_wait_s`, gives up: its requests get 429 with
    Retry-After, never an endless load/evict loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import Model, get_backend
from ..catalogue import ModelEntry
from .errors import ServerError, model_loading, overloaded, without_paths
from .generation import ModelThread
from .sources import DigestCache, SourceError, folder_bytes, resolve_source, verify_sha256

log = logging.getLogger(__name__)

LOADABLE, LOADING, LOADED, FAILED = "Loadable", "Loading", "Loaded", "Failed"
CLOSE_TIMEOUT_S = 10.0
# A model in its turn that has had no request for this long has no clients left: it is evicted at once.
IDLE_GRACE_S = 0.5

# Extras that install a backend's runtime, for the "not installed" message.
# What to install for each backend, named in the error a model with a missing runtime answers.
_BACKEND_EXTRAS = {
    "transformers": "inferd[transformers]",
    "sentence-transformers": "inferd[models-text]",
    "vader": "inferd[models-text]",
    "spacy": "inferd[models-text]",
    "sklearn": "inferd[models-text]",
    "llama-cpp": "inferd[models-llm]",
    "faster-whisper": "inferd[models-audio]",
    "silero-vad": "inferd[models-audio]",
    "piper": "inferd[tts-piper]",
    "efficientnet": "inferd[models-vision]",
    "opencv-yolo": "inferd[models-vision]",
    "litert-segmentation": "inferd[models-vision]",
    "rapidocr": "inferd[models-vision]",
}


class _NoRoom(Exception):
    """A load gave up waiting for busy models to make room in the memory budget."""


class LoadError(Exception):
    """A load failed; `error_type` is what requests for the model are answered with."""

    def __init__(self, message: str, error_type: str = "internal") -> None:
        super().__init__(message)
        self.error_type = error_type

    @property
    def public(self) -> str:
        """What clients read (answers, /status, health): the message without the server's folders, which only
        the log shows (an absolute path, the allowed folders)."""
        return without_paths(str(self))


@dataclass(eq=False)
class Slot:
    entry: ModelEntry
    state: str = LOADABLE
    model: Model | None = None
    thread: ModelThread | None = None
    error: LoadError | None = None
    failed_at: float = 0.0
    loading: asyncio.Task[None] | None = None
    load_started: float = 0.0
    loaded_at: float = 0.0
    load_s: float | None = None  # measured last time
    expected_load_s: float | None = None
    memory_bytes: int = 0
    last_used: float = 0.0
    active: int = 0  # requests using the model or waiting for its load (never evicted while > 0)
    draining: bool = False  # a load waits for this model to go idle: its new requests wait meanwhile
    extra: dict[str, Any] = field(default_factory=dict)  # owned by the engine (its batcher)


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Registry:
    def __init__(
        self,
        *,
        max_memory_bytes: int | None,
        allowed_dirs: tuple[Any, ...],
        config_dir: Any,
        digests: DigestCache,
        retry_failed_after_s: float,
        is_idle: Callable[[Slot], bool] = lambda s: True,
        on_unload: Callable[[Slot], Any] | None = None,
        on_load: Callable[[Slot, float, bool], None] | None = None,
        room_wait_s: float = 60.0,
    ) -> None:
        self.max_memory_bytes = max_memory_bytes
        self.allowed_dirs = allowed_dirs
        self.config_dir = config_dir
        self.digests = digests
        self.retry_failed_after_s = retry_failed_after_s
        self._is_idle = is_idle
        self._on_unload = on_unload
        self._on_load = on_load
        self.slots: dict[str, Slot] = {}
        # Measured load times survive a restart, so the first 503's estimated_time is already a measure.
        self._times_file = digests.file.with_name(".load-times.json") if digests.file else None
        self._times: dict[str, float] = _read_times(self._times_file)
        self._load_lock = asyncio.Lock()  # one load at a time: eviction sums and RSS deltas stay honest
        self.room_wait_s = room_wait_s  # how long a load waits for busy models to make room
        # A model's turn when models take turns in the memory budget: so many times the swap's load, this
        # long at least (see swap_quantum).
        self.turn_per_load, self.min_turn_s = 5.0, 2.0
        self._changed = asyncio.Event()  # set (and replaced) when a model may have become idle or loaded

    def slot(self, entry: ModelEntry) -> Slot:
        s = self.slots.get(entry.model_id)
        if s is None:
            s = self.slots[entry.model_id] = Slot(
                entry,
                load_s=self._times.get(entry.model_id),
                expected_load_s=_option_float(entry, "expected_load_s"),
            )
        return s

    def estimated_time(self, s: Slot) -> float:
        expected = _load_time(s)
        if s.state == LOADING:
            expected -= time.monotonic() - s.load_started
        return max(expected, 0.5)

    @contextlib.contextmanager
    def using(self, s: Slot) -> Iterator[None]:
        release = self.hold(s)
        try:
            yield
        finally:
            release()

    def hold(self, s: Slot) -> Callable[[], None]:
        """Count `s` in use (never evicted) until the returned callable is called; calls after the first do
        nothing. For a use that outlives one block: a generator handle holds its model from acquire() until
        its route has started generating."""
        s.active += 1
        s.last_used = time.monotonic()
        loop = asyncio.get_running_loop()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            s.active -= 1
            s.last_used = time.monotonic()
            if s.active == 0:
                # Thread-safe: a handle dropped without close() is released by its finalizer, on whichever
                # thread collects it, maybe after the server's loop has closed (nothing waits then).
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._notify)

        return release

    def _notify(self) -> None:
        """Wake what waits for a model to go idle or to finish draining."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _changes(self, timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def acquire(self, entry: ModelEntry, *, wait: bool, max_wait_s: float | None = None) -> Slot:
        """The loaded slot, starting (or joining) its load. Without `wait`, a load in progress is a 503; with
        it, so is a load still running after `max_wait_s` (None: no bound), with the time it has left."""
        s = self.slot(entry)
        deadline = None if max_wait_s is None else time.monotonic() + max_wait_s
        while True:
            if s.state == LOADED and not s.draining:
                s.last_used = time.monotonic()
                return s
            if (
                s.state == LOADED
            ):  # about to be swapped out for a model whose requests wait: let them go first
                await self._changes(1.0)
                continue
            if s.state == FAILED:
                if time.monotonic() - s.failed_at < self.retry_failed_after_s:
                    assert s.error is not None
                    raise self.failure(s)
                s.state = LOADABLE
            if s.state == LOADABLE:
                self.start_load(s)
            if not wait:
                raise model_loading(entry.model_id, self.estimated_time(s))
            assert s.loading is not None
            left = None if deadline is None else deadline - time.monotonic()
            # Counted as a user from now on: once loaded, the model serves this request before it can be evicted.
            s.active += 1
            try:
                # Shielded: a caller giving up must not cancel the shared load.
                await asyncio.wait_for(asyncio.shield(s.loading), left)
            except asyncio.TimeoutError:
                raise model_loading(entry.model_id, self.estimated_time(s)) from None
            finally:
                s.active -= 1
            if s.state == LOADED:  # even if it drains already: it was loaded for the requests that waited
                s.last_used = time.monotonic()
                return s
            if s.state == FAILED:
                raise self.failure(s)
            if s.state == LOADABLE:  # the load gave up: the memory budget is held by models in use
                raise overloaded(
                    f"Model {entry.model_id} cannot be loaded now: the memory budget is taken by models in use. "
                    "Retry later.",
                    self.estimated_time(s) + 1.0,
                )

    def swap_quantum(self, incoming: Slot) -> float:
        """How long a model just loaded serves before it is drained for `incoming`: the swap's cost (a load)
        stays a small part of the time, and the requests waiting for `incoming` wait well within room_wait_s."""
        load = _load_time(incoming)
        return min(max(self.turn_per_load * load, self.min_turn_s), self.room_wait_s / 4)

    def failure(self, s: Slot) -> ServerError:
        assert s.error is not None
        return ServerError(s.error.public, s.error.error_type)

    def start_load(self, s: Slot) -> None:
        if s.state in (LOADING, LOADED):
            return
        s.state, s.error, s.load_started = LOADING, None, time.monotonic()
        s.loading = asyncio.get_running_loop().create_task(
            self._load(s), name=f"inferd-load-{s.entry.model_id}"
        )

    async def _load(self, s: Slot) -> None:
        entry = s.entry
        thread: ModelThread | None = None
        try:
            thread = ModelThread(entry.model_id)
            # Outside the lock: a slow hub download or a big file to hash must not hold other models' loads.
            folder = await thread.call(self._prepare, entry)
            prepared_s = time.monotonic() - s.load_started
            async with self._load_lock:
                await self._make_room(s, exclude=s, wait=True)
                before, started = _rss(), time.monotonic()
                model = await thread.call(self._load_sync, entry, folder)
                s.memory_bytes = _measure(model, _rss() - before)
            # The work only, not the waits for the lock and for room: the turn of a swap grows with it
            # (swap_quantum), and a wait counted in it would lengthen every later turn.
            s.load_s = prepared_s + time.monotonic() - started
            s.model, s.thread, s.state = model, thread, LOADED
            s.last_used = s.loaded_at = time.monotonic()
            thread = None
            log.info("Loaded %s in %.2fs (%d MB)", entry.model_id, s.load_s, s.memory_bytes >> 20)
            self._remember(entry.model_id, s.load_s)
            if self._on_load:
                self._on_load(s, s.load_s, True)
            await self._make_room(s, exclude=s, wait=False)  # the measure may exceed the guess
        except _NoRoom as exc:
            log.warning("Not loading %s: %s", entry.model_id, exc)
            s.state = LOADABLE
        except Exception as exc:
            # The load error is the operator's to fix (bad weights, missing dependency): say what it was.
            err = (
                exc
                if isinstance(exc, LoadError)
                else LoadError(f"Model {entry.model_id} failed to load: {exc!r}")
            )
            if not isinstance(exc, LoadError):
                log.exception("Loading %s failed", entry.model_id)
            else:
                log.warning("Loading %s failed: %s", entry.model_id, exc)
            s.state, s.error, s.failed_at = FAILED, err, time.monotonic()
            if self._on_load:
                self._on_load(s, time.monotonic() - s.load_started, False)
        finally:
            if thread is not None:
                thread.shutdown()
            self._notify()

    def _remember(self, model_id: str, seconds: float) -> None:
        self._times[model_id] = round(seconds, 3)
        if self._times_file is None:
            return
        try:
            tmp = self._times_file.with_name(f"{self._times_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._times))
            os.replace(tmp, self._times_file)
        except OSError as exc:
            log.warning("Cannot record load times in %s: %s", self._times_file, exc)

    def _prepare(self, entry: ModelEntry) -> Any:
        """On the model thread: find the files, check their digests, guess the size from the disk."""
        try:
            folder = resolve_source(entry, allowed_dirs=self.allowed_dirs, config_dir=self.config_dir)
            verify_sha256(entry, folder, self.digests)
        except SourceError as exc:
            raise LoadError(str(exc), "internal") from exc
        slot = self.slots.get(entry.model_id)
        if slot is not None and not slot.memory_bytes:
            slot.memory_bytes = folder_bytes(folder)  # weights on disk ~ weights in memory, a first guess
        return folder

    def _load_sync(self, entry: ModelEntry, folder: Any) -> Model:
        try:
            backend = get_backend(entry.backend)
        except (ImportError, KeyError) as exc:
            extra = _BACKEND_EXTRAS.get(entry.backend)
            how = f"pip install '{extra}'" if extra else "install its runtime package"
            raise LoadError(
                f"Model {entry.model_id} needs the '{entry.backend}' backend, which is not available here "
                f"({exc}). To serve it, {how}, or remove the model from the catalogue.",
                "not_supported",
            ) from exc
        return backend.load(entry, str(folder))

    def resident_bytes(self, exclude: Slot | None = None) -> int:
        return sum(s.memory_bytes for s in self.slots.values() if s.state == LOADED and s is not exclude)

    async def _make_room(self, incoming: Slot, exclude: Slot, *, wait: bool) -> None:
        """Evict idle models, least recently used first, until `incoming` fits. With `wait`, busy models in the
        way are drained and waited for (raises _NoRoom when nobody waits for `incoming` any more, or after
        `room_wait_s`), and a model in its turn (swap_quantum) is left to serve it unless it has gone quiet;
        without, the budget is exceeded with a warning."""
        if self.max_memory_bytes is None:
            return
        budget, need = self.max_memory_bytes, incoming.memory_bytes
        deadline = time.monotonic() + self.room_wait_s
        drained: list[Slot] = []
        try:
            while self.resident_bytes(exclude) + need > budget:
                others = sorted(
                    (s for s in self.slots.values() if s.state == LOADED and s is not exclude),
                    key=lambda s: s.last_used,
                )
                now, turn, nap = time.monotonic(), self.swap_quantum(incoming), 1.0
                evictable = []
                for s in others:
                    if s.active or not self._is_idle(s):
                        continue
                    # Idle for an instant between two requests of its clients is not the end of its turn.
                    keep_s = min(turn - (now - s.loaded_at), IDLE_GRACE_S - (now - s.last_used))
                    if keep_s <= 0 or not wait:
                        evictable.append(s)
                    else:
                        nap = min(nap, keep_s)
                if evictable:
                    await self.unload(evictable[0])
                    continue
                if not others:
                    return  # alone and still over: bigger than the budget on its own; it loads, alone
                if not wait:
                    log.warning(
                        "Memory budget %d MB exceeded by %s: every other resident model is busy",
                        budget >> 20,
                        incoming.entry.model_id,
                    )
                    return
                if incoming.active == 0:
                    raise _NoRoom("no request waits for it any more")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _NoRoom(f"the models in the way stayed busy for {self.room_wait_s:g} s")
                for s in _in_the_way(others, self.resident_bytes(exclude) + need - budget):
                    served = now - s.loaded_at
                    if s.draining:
                        continue
                    if served < turn:  # its turn is not over: it keeps serving new requests until then
                        nap = min(nap, turn - served)
                        continue
                    s.draining = True
                    drained.append(s)
                await self._changes(min(left, nap))
        finally:
            for s in drained:
                s.draining = False
            if drained:
                self._notify()

    async def unload(self, s: Slot, *, collect: bool = True) -> None:
        if s.state != LOADED:
            return
        model, thread = s.model, s.thread
        s.state, s.model, s.thread = LOADABLE, None, None
        log.info("Unloading %s (%d MB)", s.entry.model_id, s.memory_bytes >> 20)
        if self._on_unload is not None:
            await self._on_unload(s)
        if thread is not None and model is not None:
            try:
                # Queued behind any call still on the thread (a stream at shutdown): bounded, so that
                # closing the server never hangs on one model; the close still runs when its turn comes.
                await asyncio.wait_for(asyncio.shield(thread.call(model.close)), CLOSE_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.warning("%s is still busy; closing it in the background", s.entry.model_id)
            except Exception:
                log.exception("Closing %s failed", s.entry.model_id)
            thread.shutdown()
        del model
        if collect:
            await asyncio.to_thread(gc.collect)  # give the memory back before the next load measures RSS

    async def close(self) -> None:
        # One collection for all: a full gc pass costs seconds in a process holding torch's objects.
        for s in list(self.slots.values()):
            if s.loading is not None and not s.loading.done():
                s.loading.cancel()
                await asyncio.gather(s.loading, return_exceptions=True)
            await self.unload(s, collect=False)
        await asyncio.to_thread(gc.collect)


def _in_the_way(others: list[Slot], excess: int) -> list[Slot]:
    """The least recently used models whose memory covers `excess` (all of them if none does)."""
    chosen, freed = [], 0
    for s in others:
        if freed >= excess:
            break
        chosen.append(s)
        freed += s.memory_bytes
    return chosen


def _measure(model: Model, rss_delta: int) -> int:
    try:
        reported = int(model.memory_bytes())
    except Exception:
        reported = 0
    return reported if reported > 0 else max(rss_delta, 0)


def _read_times(file: Path | None) -> dict[str, float]:
    try:
        data = json.loads(file.read_text()) if file is not None and file.is_file() else {}
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}


def _option_float(entry: ModelEntry, key: str) -> float | None:
    value = entry.options.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _load_time(s: Slot) -> float:
    """The slot's measured load time, else the catalogue's estimate, else 10 s. A measured 0.000 s (a tiny
    model) is a measure, not a missing one."""
    return s.load_s if s.load_s is not None else (s.expected_load_s or 10.0)
