"""Text generators: one dedicated thread per model, streams bridged to async, early close stops the model."""

import asyncio
import threading

import pytest

from inferd.backends import (
    Backend,
    GeneratedToken,
    Generation,
    InputError,
    StreamStep,
    TextGenerator,
    register_backend,
)
from inferd.catalogue import ModelEntry
from inferd.server.engine import Engine, EngineSettings
from inferd.server.errors import ServerError
from inferd.server.generation import STREAM_BUFFER


class Counter(TextGenerator):
    """Streams "0 1 2 ..." up to max_new_tokens (forever when None); records what ran on which thread."""

    tasks = ("text-generation",)

    def __init__(self):
        self.produced: list[tuple[str, int]] = []
        self.threads: set[int] = set()
        self.finished: list[str] = []
        self.stopped = threading.Event()

    def generate(self, prompt, parameters):
        self.threads.add(threading.get_ident())
        if not prompt:
            raise InputError("Empty prompt.")
        n = parameters.get("max_new_tokens", 3)
        return Generation(" ".join(str(i) for i in range(n)), finish_reason="length")

    def stream(self, prompt, parameters):
        self.threads.add(threading.get_ident())
        limit = parameters.get("max_new_tokens")
        i = 0
        try:
            while limit is None or i < limit:
                self.produced.append((prompt, i))
                last = limit is not None and i == limit - 1
                yield StreamStep(GeneratedToken(i, str(i)), "length" if last else None)
                i += 1
            self.finished.append(prompt)
        finally:
            self.stopped.set()


class CounterBackend(Backend):
    def __init__(self):
        self.model = Counter()

    def load(self, entry, path):
        return self.model


@pytest.fixture
async def engine(tmp_path):
    backend = CounterBackend()
    register_backend("counter-test", backend)
    (tmp_path / "llm").mkdir()
    entry = ModelEntry("llm", ("text-generation",), "counter-test", f"path:{tmp_path / 'llm'}")
    engine = Engine(
        {"llm": entry}, EngineSettings(allowed_dirs=(tmp_path,), digest_cache=tmp_path / "d.json")
    )
    engine.backend = backend
    yield engine
    await engine.close()


async def test_generate_and_the_503_before_the_model_is_loaded(engine):
    with pytest.raises(ServerError) as err:
        await engine.generator("llm")
    assert err.value.error_type == "model_loading"
    handle = await engine.generator("llm", wait_for_model=True)
    assert handle.entry.model_id == "llm" and handle.model is engine.backend.model
    assert (await handle.generate("hi", {"max_new_tokens": 2})).text == "0 1"
    with pytest.raises(ServerError) as err:
        await handle.generate("", {})
    assert err.value.status_code == 422 and err.value.message == "Empty prompt."


async def test_closing_a_stream_early_stops_the_producer(engine):
    handle = await engine.generator("llm", wait_for_model=True)
    stream = handle.stream("p", {"max_new_tokens": None})
    got = []
    async for step in stream:
        got.append(step.token.text)
        if len(got) == 3:
            break
    await stream.aclose()
    model = engine.backend.model
    assert await asyncio.to_thread(model.stopped.wait, 10)
    assert got == ["0", "1", "2"]
    # The producer runs at most STREAM_BUFFER steps ahead of the reader, then stops at its next token.
    assert len(model.produced) <= 3 + STREAM_BUFFER + 1 and model.finished == []


async def test_cancelling_the_consumer_stops_the_producer(engine):
    handle = await engine.generator("llm", wait_for_model=True)
    seen = asyncio.Event()

    async def consume():
        async for _ in handle.stream("p", {"max_new_tokens": None}):
            seen.set()

    task = asyncio.create_task(consume())
    await seen.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(engine.backend.model.stopped.wait, 10)


async def test_two_concurrent_streams_both_complete_in_arrival_order(engine):
    handle = await engine.generator("llm", wait_for_model=True)

    async def collect(prompt):
        return [(s.token.text, s.finish_reason) async for s in handle.stream(prompt, {"max_new_tokens": 5})]

    a, b = await asyncio.gather(collect("a"), collect("b"))
    expected = [(str(i), None) for i in range(4)] + [("4", "length")]
    assert a == expected and b == expected
    model = engine.backend.model
    # Serialised, never interleaved or cut short: all of a's tokens, then all of b's.
    assert [p for p, _ in model.produced] == ["a"] * 5 + ["b"] * 5
    assert model.finished == ["a", "b"]
    assert len(model.threads) == 1  # one dedicated thread for every call of this model


async def test_a_stream_error_is_a_server_error(engine):
    handle = await engine.generator("llm", wait_for_model=True)

    def broken(prompt, parameters):
        yield StreamStep(GeneratedToken(0, "x"))
        raise RuntimeError("kernel panic")

    handle.model.stream = broken
    steps = []
    with pytest.raises(ServerError) as err:
        async for step in handle.stream("p", {}):
            steps.append(step)
    assert len(steps) == 1 and err.value.status_code == 500 and "kernel panic" not in err.value.message


async def test_generator_refuses_a_model_that_does_not_generate(tmp_path):
    from inferd.backends import Model

    class Plain(Model):
        def predict(self, task, inputs, parameters):
            return list(inputs)

    class PlainBackend(Backend):
        def load(self, entry, path):
            return Plain()

    register_backend("plain-test", PlainBackend())
    (tmp_path / "p").mkdir()
    entry = ModelEntry("p", ("fill-mask",), "plain-test", f"path:{tmp_path / 'p'}")
    engine = Engine({"p": entry}, EngineSettings(allowed_dirs=(tmp_path,), digest_cache=tmp_path / "d.json"))
    with pytest.raises(ServerError) as err:
        await engine.generator("p", wait_for_model=True)
    assert err.value.status_code == 400
    await engine.close()


async def test_generations_waiting_on_a_model_are_bounded(tmp_path):
    backend = CounterBackend()
    register_backend("counter-test-2", backend)
    (tmp_path / "llm").mkdir()
    entry = ModelEntry("llm", ("text-generation",), "counter-test-2", f"path:{tmp_path / 'llm'}")
    settings = EngineSettings(
        allowed_dirs=(tmp_path,), digest_cache=tmp_path / "d.json", max_queue_per_model=1
    )
    engine = Engine({"llm": entry}, settings)
    handle = await engine.generator("llm", wait_for_model=True)
    running = handle.stream("a", {"max_new_tokens": None})
    await running.__anext__()  # the first stream holds the model's thread
    waiting = handle.stream("b", {"max_new_tokens": 1})
    second = asyncio.create_task(waiting.__anext__())
    while engine.registry.slots["llm"].active < 2:
        await asyncio.sleep(0)
    with pytest.raises(ServerError) as err:
        await handle.generate("c", {})
    assert err.value.status_code == 429 and "Retry-After" in err.value.headers
    await running.aclose()
    assert (await second).token.text == "0"  # the waiting stream runs in full once the first one ends
    await waiting.aclose()
    await engine.close()
