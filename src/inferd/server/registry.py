"""Which models are resident: lazy background loads, coalesced, and an LRU bounded by memory.

A slot per model id holds its state (Loadable -> Loading -> Loaded | Failed), its model, its dedicated thread and
what was measured (load time, resident bytes). The first request to a Loadable model starts one load task;
later requests join it (or get 503 with the time left). Before a load, idle models are evicted least recently
used first until the new one is expected to fit in `max_memory_bytes`.
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
from .errors import ServerError, model_loading
from .generation import ModelThread
from .sources import DigestCache, SourceError, folder_bytes, resolve_source, verify_sha256

log = logging.getLogger(__name__)

LOADABLE, LOADING, LOADED, FAILED = "Loadable", "Loading", "Loaded", "Failed"
CLOSE_TIMEOUT_S = 10.0

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


class LoadError(Exception):
    """A load failed; `error_type` is what requests for the model are answered with."""

    def __init__(self, message: str, error_type: str = "internal") -> None:
        super().__init__(message)
        self.error_type = error_type


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
    load_s: float | None = None  # measured last time
    expected_load_s: float | None = None
    memory_bytes: int = 0
    last_used: float = 0.0
    active: int = 0  # requests using the model right now (never evicted while > 0)
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
        # A measured 0.0 (a load under half a millisecond, rounded) is a measure, not a missing one.
        expected = next((t for t in (s.load_s, s.expected_load_s) if t is not None), 10.0)
        if s.state == LOADING:
            expected -= time.monotonic() - s.load_started
        return max(expected, 0.5)

    @contextlib.contextmanager
    def using(self, s: Slot) -> Iterator[None]:
        s.active += 1
        s.last_used = time.monotonic()
        try:
            yield
        finally:
            s.active -= 1
            s.last_used = time.monotonic()

    async def acquire(self, entry: ModelEntry, *, wait: bool) -> Slot:
        """The loaded slot, starting (or joining) its load. Without `wait`, a load in progress is a 503."""
        s = self.slot(entry)
        while True:
            if s.state == LOADED:
                s.last_used = time.monotonic()
                return s
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
            await asyncio.shield(s.loading)  # a caller giving up must not cancel the shared load
            if s.state == FAILED:
                raise self.failure(s)

    def failure(self, s: Slot) -> ServerError:
        assert s.error is not None
        return ServerError(str(s.error), s.error.error_type)

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
            async with self._load_lock:
                await self._make_room(s, exclude=s)
                before = _rss()
                model = await thread.call(self._load_sync, entry, folder)
                s.memory_bytes = _measure(model, _rss() - before)
            s.load_s = time.monotonic() - s.load_started
            s.model, s.thread, s.state, s.last_used = model, thread, LOADED, time.monotonic()
            thread = None
            log.info("Loaded %s in %.2fs (%d MB)", entry.model_id, s.load_s, s.memory_bytes >> 20)
            self._remember(entry.model_id, s.load_s)
            if self._on_load:
                self._on_load(s, s.load_s, True)
            await self._make_room(s, exclude=s)  # the measure may exceed the guess
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

    async def _make_room(self, incoming: Slot, exclude: Slot) -> None:
        if self.max_memory_bytes is None:
            return
        need = incoming.memory_bytes
        while self.resident_bytes(exclude) + need > self.max_memory_bytes:
            idle = [
                s
                for s in self.slots.values()
                if s.state == LOADED and s is not exclude and s.active == 0 and self._is_idle(s)
            ]
            if not idle:
                log.warning(
                    "Memory budget %d MB exceeded by %s: every other resident model is busy",
                    self.max_memory_bytes >> 20,
                    incoming.entry.model_id,
                )
                return
            await self.unload(min(idle, key=lambda s: s.last_used))

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
