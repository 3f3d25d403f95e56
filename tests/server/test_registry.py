"""Load state and the memory LRU, through the engine with real test backends."""

import asyncio
import gc
import threading
import time

import pytest
from appkit import Llm

from inferd.backends import Backend, Model, register_backend
from inferd.catalogue import ModelEntry
from inferd.server.engine import Engine, EngineSettings
from inferd.server.errors import ServerError


class Sized(Model):
    tasks = ("feature-extraction",)

    def __init__(self, backend, name, size, ballast=0):
        self.backend, self.name, self.size = backend, name, size
        self.ballast = bytearray(b"\x01") * ballast  # touched pages: resident, seen by the RSS measure

    def predict(self, task, inputs, parameters):
        self.backend.seen.extend(inputs)
        if self.backend.work_s:
            time.sleep(self.backend.work_s)
        gate = self.backend.gates.get(self.name)
        if gate is not None:
            self.backend.running.set()
            assert gate.wait(10)
        return [len(x) for x in inputs]

    def memory_bytes(self):
        return self.size

    def close(self):
        self.backend.closed.append(self.name)
        self.backend.resident -= 1


class SizedBackend(Backend):
    def __init__(self, size=100, ballast=0):
        self.size, self.ballast = size, ballast
        self.closed: list[str] = []
        self.seen: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.running = threading.Event()
        self.work_s = 0.0  # each predict sleeps this long
        self.loads = 0
        self.resident = self.most_resident = 0

    def load(self, entry, path):
        self.loads += 1
        self.resident += 1
        self.most_resident = max(self.most_resident, self.resident)
        return Sized(self, entry.model_id, self.size, self.ballast)


def engine_for(tmp_path, backend, ids, **settings):
    register_backend("sized-test", backend)
    catalogue = {}
    for model_id in ids:
        (tmp_path / model_id).mkdir(exist_ok=True)
        # Weights on disk are the first guess of a model's size, before a load measures it.
        (tmp_path / model_id / "weights.bin").write_bytes(b"\0" * backend.size)
        options = {"expected_load_s": 42}
        catalogue[model_id] = ModelEntry(
            model_id, ("feature-extraction",), "sized-test", f"path:{tmp_path / model_id}", options=options
        )
    return Engine(
        catalogue, EngineSettings(allowed_dirs=(tmp_path,), digest_cache=tmp_path / "d.json", **settings)
    )


async def predict(engine, model_id, text="x", wait=True):
    return await engine.predict(model_id, "feature-extraction", [text], {}, wait_for_model=wait)


async def test_estimated_time_comes_from_the_entry_then_from_the_measured_load(tmp_path):
    engine = engine_for(tmp_path, SizedBackend(), ("a", "b"), max_memory_bytes=150)
    before = time.monotonic()
    with pytest.raises(ServerError) as err:
        await predict(engine, "a", wait=False)
    # The catalogue's expectation minus the time the load has run, which is at most the time this call took.
    assert 42 - (time.monotonic() - before) <= err.value.extra["estimated_time"] <= 42
    await predict(engine, "a")
    measured = engine.registry.slots["a"].load_s
    await predict(engine, "b")  # evicts a
    with pytest.raises(ServerError) as err:
        await predict(engine, "a", wait=False)
    assert err.value.extra["estimated_time"] <= max(
        measured, 0.5
    )  # now the measured load time (0.5 at least)
    await engine.close()


async def test_a_busy_model_is_never_evicted(tmp_path):
    backend = SizedBackend()
    engine = engine_for(tmp_path, backend, ("a", "b", "c"), max_memory_bytes=150)
    engine.registry.min_turn_s = engine.registry.turn_per_load = 0  # no turn to wait for (turns: below)
    await predict(engine, "a")
    backend.gates["a"] = threading.Event()
    busy = asyncio.create_task(predict(engine, "a", "busy"))
    await asyncio.to_thread(backend.running.wait, 10)
    # b does not fit beside a, and a is busy: b's load waits for a (never past the budget), and a drains:
    # a request for it that comes now waits for the swap instead of keeping a busy.
    for_b = asyncio.create_task(predict(engine, "b"))
    await _until(lambda: engine.registry.slots["a"].draining)
    late_for_a = asyncio.create_task(predict(engine, "a", "late"))
    await asyncio.sleep(0.05)  # (a chance to run, were it let through; no assertion depends on the duration)
    assert backend.closed == [] and engine.status("a")["loaded"] and backend.seen == ["x", "busy"]
    backend.gates["a"].set()
    del backend.gates["a"]
    assert await busy == [4]
    assert await for_b == [1]
    assert await late_for_a == [4]  # then a came back for it (and b went, idle again)
    assert backend.closed == ["a", "b"] and backend.most_resident == 1
    await engine.close()


async def _until(condition):
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_two_models_that_do_not_fit_together_take_turns_instead_of_livelocking(tmp_path):
    # Issue 10 row 4: two clients on each of two models that cannot be resident together, all waiting for
    # their model. Every request is answered, the budget is never exceeded, and each load serves requests.
    backend = SizedBackend()
    backend.work_s = 0.01
    engine = engine_for(tmp_path, backend, ("a", "b"), max_memory_bytes=150)

    async def client(model_id):
        return [await predict(engine, model_id, "xy") for _ in range(5)]

    answers = await asyncio.gather(*(client(m) for m in ("a", "a", "b", "b")))
    assert answers == [[[2]] * 5] * 4
    assert backend.most_resident == 1
    assert backend.loads <= 10  # a load per swap, and a swap serves every request waiting for it
    await engine.close()


async def test_a_swap_is_paid_for_by_a_turn_that_serves_many_requests(tmp_path):
    """Closed-loop clients of two small models used to make a swap per request (109 loads of each in the
    soak's minute, as many loads as answers): a model just loaded now serves its turn before it drains."""
    backend = SizedBackend()
    backend.work_s = 0.002
    engine = engine_for(tmp_path, backend, ("a", "b"), max_memory_bytes=150)
    engine.registry.min_turn_s = 0.5

    async def client(model_id):
        return [await predict(engine, model_id, "xy") for _ in range(20)]

    answers = await asyncio.gather(*(client(m) for m in ("a", "a", "b", "b")))
    assert answers == [[[2]] * 20] * 4
    assert backend.most_resident == 1
    assert backend.loads <= 8, backend.loads  # a swap per request would be about 40
    await engine.close()


class SizedLlm(Llm):
    def __init__(self, backend):
        super().__init__()
        self.backend = backend

    def memory_bytes(self):
        return self.backend.size

    def close(self):
        self.backend.closed.append("chat")


class ChatBackend(SizedBackend):
    def load(self, entry, path):
        return SizedLlm(self) if entry.model_id == "chat" else super().load(entry, path)


async def test_a_generator_handle_holds_its_model_until_closed(tmp_path):
    """The soak's chat clients got 503 "loading": their model was evicted between acquire and generate, while
    the route rendered the chat template, because nothing counted it in use."""
    backend = ChatBackend()
    engine = engine_for(tmp_path, backend, ("chat", "b"), max_memory_bytes=150)
    engine.registry.min_turn_s = engine.registry.turn_per_load = 0
    handle = await engine.generator("chat", wait_for_model=True)
    for_b = asyncio.create_task(predict(engine, "b"))
    await _until(lambda: engine.registry.slots["chat"].draining)  # b waits for it, not evicting it
    assert engine.status("chat")["loaded"] and backend.closed == []
    assert (await handle.generate("hi", {"max_new_tokens": 2})).text == " w0 w1"
    handle.close()
    handle.close()  # idempotent: counted once
    assert await for_b == [1]
    assert backend.closed == ["chat"] and engine.registry.slots["chat"].active == 0
    await engine.close()


async def test_a_lost_generator_handle_lets_its_model_go(tmp_path):
    """A route cancelled between generator() and close() drops its handle: the model is not pinned forever."""
    engine = engine_for(tmp_path, ChatBackend(), ("chat",))
    handle = await engine.generator("chat", wait_for_model=True)
    assert engine.registry.slots["chat"].active == 1
    del handle
    gc.collect()
    assert engine.registry.slots["chat"].active == 0
    await engine.close()


async def test_a_load_that_cannot_make_room_in_time_is_a_429_not_a_loop(tmp_path):
    backend = SizedBackend()
    engine = engine_for(tmp_path, backend, ("a", "b"), max_memory_bytes=150)
    engine.registry.room_wait_s = 0.2
    await predict(engine, "a")
    backend.gates["a"] = threading.Event()
    busy = asyncio.create_task(predict(engine, "a", "busy"))
    await asyncio.to_thread(backend.running.wait, 10)
    with pytest.raises(ServerError) as err:
        await predict(engine, "b")
    assert err.value.status_code == 429 and int(err.value.headers["Retry-After"]) >= 1
    assert engine.status("b")["state"] == "Loadable" and not engine.registry.slots["a"].draining
    backend.gates["a"].set()
    assert await busy == [4]
    assert backend.loads == 1 and backend.closed == []
    await engine.close()


async def test_without_memory_bytes_the_rss_growth_of_the_load_is_counted(tmp_path):
    backend = SizedBackend(size=0, ballast=64 << 20)
    engine = engine_for(tmp_path, backend, ("a",))
    await predict(engine, "a")
    assert engine.registry.slots["a"].memory_bytes >= 32 << 20
    await engine.close()


@pytest.mark.parametrize("prefetch", [0, 1])
async def test_a_cancelled_request_never_reaches_the_model(tmp_path, prefetch):
    """Without prefetch the next batch is formed only after the running one: a request cancelled meanwhile never
    reaches the model. With prefetch (`--prefetch-batches 1`) the batch [gone, kept] is already queued on the model's thread,
    which starts it the moment `first` ends, possibly before the loop has seen the cancel: then its work runs and is
    lost (`kept` is answered once, from a batch without `gone` when the recall came first), never its answer."""
    backend = SizedBackend()
    engine = engine_for(tmp_path, backend, ("a",), prefetch_batches=prefetch)
    await predict(engine, "a", "warm")
    backend.gates["a"] = threading.Event()
    backend.running.clear()
    first = asyncio.create_task(predict(engine, "a", "first"))
    await asyncio.to_thread(backend.running.wait, 10)
    gone = asyncio.create_task(predict(engine, "a", "gone"))
    kept = asyncio.create_task(predict(engine, "a", "kept"))
    await asyncio.sleep(0.01)  # let both reach the queue (no assertion depends on this duration)
    gone.cancel()
    backend.gates["a"].set()
    assert await asyncio.gather(first, kept) == [[len("first")], [len("kept")]]
    with pytest.raises(asyncio.CancelledError):
        await gone
    if prefetch:
        assert backend.seen[:2] == ["warm", "first"] and backend.seen[-1] == "kept"
        assert backend.seen[2:] in (["kept"], ["gone", "kept", "kept"])
    else:
        assert backend.seen == ["warm", "first", "kept"]
    await engine.close()


async def test_stats_record_batches_and_requests(tmp_path):
    engine = engine_for(tmp_path, SizedBackend(), ("a",))
    with pytest.raises(ServerError):
        await predict(engine, "a", wait=False)  # 503 while loading: counted as an error
    await predict(engine, "a")
    stats = engine.stats
    assert stats.batches["a", "feature-extraction"] >= 1
    assert stats.requests["a", "feature-extraction"] == 2
    assert stats.errors["a", "feature-extraction", "model_loading"] == 1
    assert stats.loads["a", True] == 1
    assert "requests" in stats.snapshot()
    await engine.close()


async def test_measured_load_times_survive_a_restart(tmp_path):
    engine = engine_for(tmp_path, SizedBackend(), ("a",))
    await predict(engine, "a")
    await engine.close()
    restarted = engine_for(tmp_path, SizedBackend(), ("a",))
    with pytest.raises(ServerError) as err:
        await predict(restarted, "a", wait=False)
    assert err.value.extra["estimated_time"] < 40  # the measure, not the catalogue's expected 42 s
    await restarted.close()
