"""The engine with real (tiny, deterministic) backends registered like any other backend."""

import asyncio
import dataclasses
import hashlib
import threading

import pytest

from inferd.backends import Backend, InputError, Model, register_backend
from inferd.catalogue import ModelEntry
from inferd.server.engine import Engine, EngineSettings
from inferd.server.errors import ServerError


class Echo(Model):
    """Upper-cases text; records every predict call. `gate`, when given, holds each call until set."""

    tasks = ("text-classification",)

    def __init__(self, backend, name, size):
        self.backend, self.name, self.size = backend, name, size
        self.closed = False

    def predict(self, task, inputs, parameters):
        self.backend.calls.append((self.name, list(inputs), dict(parameters)))
        if self.backend.predict_gate is not None:
            self.backend.running.set()
            assert self.backend.predict_gate.wait(10)
        if any(x == "" for x in inputs):
            raise InputError("Empty text: nothing to classify.")
        if any(x == "crash" for x in inputs):
            raise RuntimeError("segfault-ish details")
        results = [[{"label": x.upper(), "score": 1.0}] for x in inputs]
        return results[:-1] if parameters.get("drop_one") else results

    def memory_bytes(self):
        return self.size

    def close(self):
        self.closed = True
        self.backend.closed.append(self.name)


class EchoBackend(Backend):
    def __init__(self, size=0, fail=None):
        self.size, self.fail = size, fail
        self.loads: list[str] = []
        self.closed: list[str] = []
        self.calls: list = []
        self.models: dict[str, Echo] = {}
        self.load_gate: threading.Event | None = None
        self.predict_gate: threading.Event | None = None
        self.running = threading.Event()

    def load(self, entry, path):
        self.loads.append(entry.model_id)
        if self.load_gate is not None:
            assert self.load_gate.wait(10)
        if self.fail:
            raise RuntimeError(self.fail)
        model = self.models[entry.model_id] = Echo(self, entry.model_id, self.size)
        return model


def make(tmp_path, backend, ids=("m",), name="echo-test", **settings):
    register_backend(name, backend)
    catalogue = {}
    for model_id in ids:
        (tmp_path / model_id).mkdir(exist_ok=True)
        catalogue[model_id] = ModelEntry(
            model_id, ("text-classification",), name, f"path:{tmp_path / model_id}", default_for=()
        )
    settings.setdefault("digest_cache", tmp_path / "digests.json")
    settings.setdefault("allowed_dirs", (tmp_path,))
    return Engine(catalogue, EngineSettings(**settings))


async def test_first_request_answers_503_with_estimated_time_then_serves(tmp_path):
    backend = EchoBackend()
    backend.load_gate = threading.Event()
    engine = make(tmp_path, backend)
    with pytest.raises(ServerError) as err:
        await engine.predict("m", "text-classification", ["hi"], {})
    assert err.value.error_type == "model_loading" and err.value.status_code == 503
    assert err.value.extra["estimated_time"] > 0 and "Retry-After" in err.value.headers
    assert engine.status("m")["state"] == "Loading"
    backend.load_gate.set()
    assert await engine.predict("m", "text-classification", ["hi"], {}, wait_for_model=True) == [
        [{"label": "HI", "score": 1.0}]
    ]
    assert engine.status("m") == {
        "loaded": True,
        "state": "Loaded",
        "compute_type": "cpu",
        "framework": "echo-test",
    }
    assert await engine.predict("m", "text-classification", ["yo"], {}) == [[{"label": "YO", "score": 1.0}]]
    await engine.close()


async def test_concurrent_requests_coalesce_into_one_load(tmp_path):
    backend = EchoBackend()
    backend.load_gate = threading.Event()
    engine = make(tmp_path, backend)
    waiting = [
        asyncio.create_task(engine.predict("m", "text-classification", [str(i)], {}, wait_for_model=True))
        for i in range(5)
    ]
    await asyncio.sleep(0)
    for _ in range(3):
        with pytest.raises(ServerError, match="currently loading"):
            await engine.predict("m", "text-classification", ["x"], {})
    backend.load_gate.set()
    assert len(await asyncio.gather(*waiting)) == 5
    assert backend.loads == ["m"]
    await engine.close()


async def test_lru_unloads_the_least_recently_used_idle_model(tmp_path):
    backend = EchoBackend(size=100)
    engine = make(tmp_path, backend, ids=("a", "b", "c"), max_memory_bytes=250)
    for model_id in ("a", "b", "a"):  # a is used last: b is the least recently used
        await engine.predict(model_id, "text-classification", ["x"], {}, wait_for_model=True)
    await engine.predict("c", "text-classification", ["x"], {}, wait_for_model=True)
    assert backend.closed == ["b"] and backend.models["b"].closed
    assert [engine.status(m)["state"] for m in "abc"] == ["Loaded", "Loadable", "Loaded"]
    # b comes back on demand, evicting a (now the least recently used).
    await engine.predict("b", "text-classification", ["x"], {}, wait_for_model=True)
    assert backend.closed == ["b", "a"]
    await engine.close()


async def test_overload_answers_429_with_retry_after(tmp_path):
    backend = EchoBackend()
    backend.predict_gate = threading.Event()
    engine = make(tmp_path, backend, max_queue_per_model=1)
    running = asyncio.create_task(engine.predict("m", "text-classification", ["1"], {}, wait_for_model=True))
    await asyncio.to_thread(backend.running.wait, 10)
    queued = asyncio.create_task(engine.predict("m", "text-classification", ["2"], {}))
    await asyncio.sleep(0)
    with pytest.raises(ServerError) as err:
        await engine.predict("m", "text-classification", ["3"], {})
    assert err.value.status_code == 429 and err.value.error_type == "overloaded"
    assert int(err.value.headers["Retry-After"]) >= 1
    backend.predict_gate.set()
    await asyncio.gather(running, queued)
    await engine.close()


async def test_a_failing_model_leaves_the_others_serving_and_can_be_retried(tmp_path):
    good, bad = EchoBackend(), EchoBackend(fail="weights are garbage")
    engine = make(tmp_path, good, ids=("good",), name="echo-good", retry_failed_after_s=0.0)
    engine.catalogue.update(make(tmp_path, bad, ids=("bad",), name="echo-bad").catalogue)
    with pytest.raises(ServerError) as err:
        await engine.predict("bad", "text-classification", ["x"], {}, wait_for_model=True)
    assert (
        err.value.status_code == 500
        and "bad failed to load: RuntimeError('weights are garbage')" in err.value.message
    )
    assert engine.status("bad")["state"] == "Failed" and "failed to load" in engine.status("bad")["error"]
    assert await engine.predict("good", "text-classification", ["x"], {}, wait_for_model=True)
    bad.fail = None  # fixed on disk: the next request after the backoff loads it again
    assert await engine.predict("bad", "text-classification", ["x"], {}, wait_for_model=True)
    assert bad.loads == ["bad", "bad"]
    await engine.close()


async def test_a_failed_load_is_not_retried_before_the_backoff(tmp_path):
    bad = EchoBackend(fail="nope")
    engine = make(tmp_path, bad, retry_failed_after_s=3600)
    for _ in range(3):
        with pytest.raises(ServerError, match="failed to load"):
            await engine.predict("m", "text-classification", ["x"], {}, wait_for_model=True)
    assert bad.loads == ["m"]
    await engine.close()


async def test_a_backend_that_is_not_installed_is_a_clear_not_supported(tmp_path):
    (tmp_path / "m").mkdir()
    entry = ModelEntry("m", ("text-classification",), "transformers-not-here", f"path:{tmp_path / 'm'}")
    engine = Engine({"m": entry}, EngineSettings(allowed_dirs=(tmp_path,), digest_cache=tmp_path / "d.json"))
    with pytest.raises(ServerError) as err:
        await engine.predict("m", "text-classification", ["x"], {}, wait_for_model=True)
    assert err.value.status_code == 400 and "'transformers-not-here' backend" in err.value.message
    await engine.close()


async def test_sha256_mismatch_refuses_to_load_naming_the_file_and_digests(tmp_path):
    backend = EchoBackend()
    engine = make(tmp_path, backend)
    (tmp_path / "m" / "weights.bin").write_bytes(b"tampered")
    entry = engine.catalogue["m"]
    expected = "0" * 64
    engine.catalogue["m"] = ModelEntry(
        entry.model_id, entry.tasks, entry.backend, entry.source, sha256={"weights.bin": expected}
    )
    with pytest.raises(ServerError) as err:
        await engine.predict("m", "text-classification", ["x"], {}, wait_for_model=True)
    msg = err.value.message
    assert "sha256 mismatch for weights.bin" in msg and expected in msg
    assert hashlib.sha256(b"tampered").hexdigest() in msg  # the digest found is shown too
    assert backend.loads == [] and engine.status("m")["state"] == "Failed"
    await engine.close()


async def test_a_path_outside_the_allowed_dirs_is_refused(tmp_path):
    backend = EchoBackend()
    allowed = tmp_path / "models"
    allowed.mkdir()
    engine = make(tmp_path, backend, allowed_dirs=(allowed,))
    with pytest.raises(ServerError, match="outside the allowed folders"):
        await engine.predict("m", "text-classification", ["x"], {}, wait_for_model=True)
    assert backend.loads == []
    await engine.close()


async def test_equal_parameters_share_one_predict_call_different_ones_do_not(tmp_path):
    backend = EchoBackend()
    engine = make(tmp_path, backend)
    await engine.predict("m", "text-classification", ["warm"], {}, wait_for_model=True)
    backend.predict_gate = threading.Event()
    backend.running.clear()
    first = asyncio.create_task(engine.predict("m", "text-classification", ["first"], {}))
    await asyncio.to_thread(backend.running.wait, 10)
    same = [asyncio.create_task(engine.predict("m", "text-classification", [w], {"top_k": 1})) for w in "abc"]
    other = asyncio.create_task(engine.predict("m", "text-classification", ["z"], {"top_k": 2}))
    await asyncio.sleep(0)
    backend.predict_gate.set()
    assert [r[0][0]["label"] for r in await asyncio.gather(*same)] == ["A", "B", "C"]
    await asyncio.gather(first, other)
    assert [c[1] for c in backend.calls[1:]] == [["first"], ["a", "b", "c"], ["z"]]
    await engine.close()


async def test_max_batch_wait_holds_a_lone_request_for_the_next_one(tmp_path):
    # `--max-batch-wait-ms` reaches the engine's batcher (tests/server/test_batching.py checks the wait itself).
    backend = EchoBackend()
    engine = make(tmp_path, backend, max_batch_size=2, max_batch_wait_s=30.0)
    await engine.predict("m", "text-classification", ["w1", "w2"], {}, wait_for_model=True)  # full: no wait
    assert engine.registry.slots["m"].extra["batcher"].max_wait_s == 30.0
    first = asyncio.create_task(engine.predict("m", "text-classification", ["a"], {}))
    await asyncio.sleep(0.05)  # not a bound on anything: `first` waits up to 30 s for company
    second = await engine.predict("m", "text-classification", ["b"], {})
    assert second[0][0]["label"] == "B" and (await first)[0][0]["label"] == "A"
    assert [c[1] for c in backend.calls] == [["w1", "w2"], ["a", "b"]]
    await engine.close()


async def test_a_model_that_prices_its_inputs_gets_batches_within_its_token_budget(tmp_path):
    backend = EchoBackend()
    engine = make(tmp_path, backend)
    engine.catalogue["m"] = dataclasses.replace(engine.catalogue["m"], max_batch_tokens=20)
    await engine.predict("m", "text-classification", ["warm"], {}, wait_for_model=True)
    # Priced per task as the transformers backend does (its max_input_tokens stays 0): 8 tokens per text.
    backend.models["m"].input_tokens = lambda task, item: 8 if task == "text-classification" else 0
    backend.predict_gate = threading.Event()
    backend.running.clear()
    first = asyncio.create_task(engine.predict("m", "text-classification", ["first"], {}))
    await asyncio.to_thread(backend.running.wait, 10)
    texts = [c * 24 for c in "abcde"]
    rest = [asyncio.create_task(engine.predict("m", "text-classification", [t], {})) for t in texts]
    await asyncio.sleep(0)
    backend.predict_gate.set()
    assert [r[0][0]["label"] for r in await asyncio.gather(*rest)] == [t.upper() for t in texts]
    await first
    assert [len(c[1]) for c in backend.calls[2:]] == [2, 2, 1]  # 8 + 8 fits in 20 tokens, a third does not
    await engine.close()


async def test_model_errors_map_to_validation_internal_and_count_checks(tmp_path, caplog):
    engine = make(tmp_path, EchoBackend())
    with pytest.raises(ServerError) as err:
        await engine.predict("m", "text-classification", [""], {}, wait_for_model=True)
    assert err.value.status_code == 422 and err.value.message == "Empty text: nothing to classify."
    with pytest.raises(ServerError) as err:
        await engine.predict("m", "text-classification", ["crash"], {})
    assert err.value.status_code == 500 and "segfault" not in err.value.message
    assert "segfault-ish details" in caplog.text  # the details go to the log
    with pytest.raises(ServerError) as err:
        await engine.predict("m", "text-classification", ["a", "b"], {"drop_one": True})
    assert err.value.status_code == 500 and "wrong number of results" in err.value.message
    await engine.close()


async def test_catalogue_lookups(tmp_path):
    engine = make(tmp_path, EchoBackend(), ids=("a", "b"))
    engine.catalogue["b"] = ModelEntry(
        "b", ("text-classification",), "echo-test", "path:x", default_for=("text-classification",)
    )
    assert engine.recommended("text-classification") == "b"
    assert engine.recommended("translation") is None
    assert [e.model_id for e in engine.entries()] == ["a", "b"]
    for bad in ("nope", "../etc/passwd", "/abs", "a//b"):
        with pytest.raises(ServerError) as err:
            engine.entry(bad)
        assert err.value.status_code == 404
    with pytest.raises(ServerError) as err:
        await engine.predict("a", "translation", ["x"], {})
    assert err.value.status_code == 400 and "does not serve task 'translation'" in err.value.message
    await engine.close()


async def test_request_timeout_answers_504(tmp_path):
    backend = EchoBackend()
    backend.predict_gate = threading.Event()
    engine = make(tmp_path, backend, request_timeout_s=0.05, preload=("m",))
    await engine.start()  # loaded: the 504 is the model's run outlasting the timeout, not its load
    try:
        with pytest.raises(ServerError) as err:
            await engine.predict("m", "text-classification", ["x"], {}, wait_for_model=True)
        assert err.value.status_code == 504
    finally:
        backend.predict_gate.set()
        await engine.close()


async def test_preload_loads_at_start(tmp_path):
    backend = EchoBackend()
    engine = make(tmp_path, backend, preload=("m",))
    await engine.start()
    assert backend.loads == ["m"] and engine.status("m")["loaded"]
    await engine.close()
    assert backend.closed == ["m"]
