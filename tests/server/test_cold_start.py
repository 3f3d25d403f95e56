"""A request for a model that is not loaded waits for the load on every protocol, unless the client says not
to (then the hosted API's 503 with `estimated_time`); a load outlasting --max-load-wait answers that 503 too."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from appkit import Llm, Toy

from inferd.backends import Backend, register_backend
from inferd.catalogue import ModelEntry
from inferd.server.app import create_app
from inferd.server.config import ConfigError, preload_models
from inferd.server.engine import Engine, EngineSettings
from inferd.server.settings import ServerSettings


class GatedBackend(Backend):
    """Toy models whose loads wait for `gate`: a test sees a request held while its model is Loading."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def load(self, entry, path):
        assert self.gate.wait(10)
        return Llm() if "text-generation" in entry.tasks else Toy(entry.tasks)


def cold_app(tmp_path, **engine_kw):
    backend = GatedBackend()
    register_backend("gated", backend)
    (tmp_path / "m").mkdir(exist_ok=True)

    def entry(model_id, tasks):
        return ModelEntry(model_id, tasks, "gated", f"path:{tmp_path / 'm'}", default_for=tasks)

    catalogue = {
        "cold/text": entry("cold/text", ("text-classification",)),
        "cold/llm": entry("cold/llm", ("text-generation", "chat-completion")),
        "cold/embedder": entry("cold/embedder", ("feature-extraction",)),
    }
    settings = EngineSettings(allowed_dirs=(tmp_path,), digest_cache=tmp_path / "d.json", **engine_kw)
    engine = Engine(catalogue, settings)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine, ServerSettings())), base_url="http://inferd"
    )
    return engine, backend, client


# One first call per protocol, each to a model nothing has loaded yet.
FIRST_CALLS = [
    ("/models/cold/text", {"inputs": "I love it"}, "cold/text"),  # HF Inference API
    ("/models/cold/llm", {"inputs": "hi"}, "cold/llm"),  # TGI on the model URL
    ("/models/cold/llm/generate", {"inputs": "hi"}, "cold/llm"),  # TGI
    (
        "/v1/chat/completions",
        {"model": "cold/llm", "messages": [{"role": "user", "content": "hi"}]},
        "cold/llm",
    ),
    ("/v1/completions", {"model": "cold/llm", "prompt": "hi"}, "cold/llm"),
    ("/v1/embeddings", {"model": "cold/embedder", "input": "hi"}, "cold/embedder"),
    ("/embed", {"inputs": "hi"}, "cold/embedder"),  # TEI
]


@pytest.mark.parametrize("path, body, model", FIRST_CALLS)
async def test_a_first_call_waits_for_the_load_and_succeeds(tmp_path, path, body, model):
    engine, backend, client = cold_app(tmp_path)
    async with client:
        call = asyncio.create_task(client.post(path, json=body))
        while engine.status(model)["state"] != "Loading":
            assert not call.done(), (await call).text  # answered before its model even started loading
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the request is now held by the load, not answered
        assert not call.done()
        backend.gate.set()
        r = await call
        assert r.status_code == 200, r.text
        assert engine.status(model)["loaded"] is True
    await engine.close()


@pytest.mark.parametrize(
    "headers, options",
    [
        ({"X-Wait-For-Model": "false"}, None),
        ({}, {"wait_for_model": False}),
        ({"X-Wait-For-Model": "0"}, None),
    ],
)
async def test_a_client_that_will_not_wait_gets_the_hosted_apis_503(tmp_path, headers, options):
    engine, backend, client = cold_app(tmp_path)
    body = {"inputs": "I love it", **({"options": options} if options else {})}
    async with client:
        r = await client.post("/models/cold/text", json=body, headers=headers)
        assert r.status_code == 503
        assert r.json() == {
            "error": "Model cold/text is currently loading",
            "error_type": "model_loading",
            "estimated_time": r.json()["estimated_time"],
        }
        assert r.json()["estimated_time"] > 0 and int(r.headers["retry-after"]) >= 1
        # The 503 started the load: once it is done, the same request is served.
        backend.gate.set()
        while not engine.status("cold/text")["loaded"]:
            await asyncio.sleep(0.01)
        assert (await client.post("/models/cold/text", json=body, headers=headers)).status_code == 200
    await engine.close()


@pytest.mark.parametrize(
    "path, body",
    [
        ("/models/cold/text", {"inputs": "x", "options": {"wait_for_model": True}}),
        ("/v1/chat/completions", {"model": "cold/llm", "messages": [{"role": "user", "content": "hi"}]}),
        ("/models/cold/llm/generate", {"inputs": "hi"}),
    ],
)
async def test_a_load_outlasting_max_load_wait_is_a_503_with_retry_after(tmp_path, path, body):
    engine, backend, client = cold_app(tmp_path, max_load_wait_s=0.2)
    async with client:
        r = await client.post(path, json=body, headers={"X-Wait-For-Model": "true"})
        assert r.status_code == 503, r.text
        assert r.json()["error_type"] == "model_loading" and int(r.headers["retry-after"]) >= 1
        backend.gate.set()
    await engine.close()


async def test_the_load_wait_stays_inside_the_request_timeout(tmp_path):
    engine, backend, client = cold_app(tmp_path, max_load_wait_s=600, request_timeout_s=1.0)
    assert engine.load_wait_s() < 1.0  # a load outlasting the request is answered 503 (retry), not 504
    async with client:
        r = await client.post("/models/cold/text", json={"inputs": "x"})
        assert r.status_code == 503 and "estimated_time" in r.json()
        backend.gate.set()
    await engine.close()


def test_preload_names_all_and_defaults():
    entry = lambda m, d=(): ModelEntry(m, ("text-classification",), "toy", "path:x", default_for=d)  # noqa: E731
    catalogue = {"a": entry("a", ("text-classification",)), "b": entry("b"), "c": entry("c")}
    assert preload_models(["c"], catalogue) == ["c"]
    assert preload_models(["all"], catalogue) == ["a", "b", "c"]
    assert preload_models(["c"], catalogue, defaults=True) == ["c", "a"]
    assert preload_models([], catalogue, defaults=True) == ["a"]
    with pytest.raises(ConfigError, match="unknown models: nope/model.*--preload-defaults"):
        preload_models(["c", "nope/model"], catalogue)
