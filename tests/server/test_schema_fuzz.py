"""The schema is the contract: /openapi.json states what the server takes, and schemathesis checks both ways.

A short fixed-seed run over every operation (the coverage phase, deterministic, which tries each field's
boundaries and wrong types, then a few random cases per operation) of the toy server (appkit's models on a real uvicorn): no 5xx,
answers as documented (status, content type, error envelope), schema-valid requests accepted, schema-invalid
ones refused, the server alive after. `make fuzz` (scripts/fuzz.py) is the long run on the default models.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from appkit import free_port, make_app, running

from inferd.server.openapi import build_openapi
from inferd.tasks import TASKS

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory):
    """The toy app on uvicorn in a thread (schemathesis runs in another process and needs a socket)."""
    app, _, _ = make_app(tmp_path_factory.mktemp("schema-fuzz"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the toy server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.skipif(
    importlib.util.find_spec("schemathesis") is None, reason="needs the test extra: schemathesis"
)
def test_a_fixed_seed_fuzz_of_every_operation_finds_nothing(toy_server):
    sys.path.insert(0, str(SCRIPTS))
    try:
        import fuzz
    finally:
        sys.path.remove(str(SCRIPTS))
    operations = sum(len(item) for item in httpx.get(f"{toy_server}/openapi.json").json()["paths"].values())
    run = fuzz.schemathesis_run(
        toy_server, seed=20261206, max_examples=3, phases="coverage,fuzzing", workers=1
    )
    tally = run["tally"]
    assert tally.get("cases", 0) >= 2 * operations, run["output"][-3000:]  # every operation, both modes
    assert tally.get("2xx", 0) > 0 and tally.get("4xx", 0) > 0, tally  # valid and invalid requests reached
    assert fuzz.server_errors(tally) == {}, run["server_errors"]
    assert run["exit_code"] == 0 and run["failures"] == 0, run["output"][-6000:]
    # alive after, and still answering
    assert httpx.get(f"{toy_server}/health").status_code == 200
    answer = httpx.post(f"{toy_server}/models/toy/text", json={"inputs": "I love you"})
    assert answer.status_code == 200 and answer.json()[0][0]["label"] == "POSITIVE"


# ---- the schema reads the registry and the served models ------------------------------------------------
def _entries(tmp_path):
    app, engine, _ = make_app(tmp_path)
    return engine.entries()


def test_every_task_body_carries_the_registry_parameters(tmp_path):
    schema = build_openapi(_entries(tmp_path))
    for task in TASKS.values():
        request = schema["components"]["schemas"][
            "".join(w.capitalize() for w in task.name.split("-")) + "Request"
        ]
        parameters = request["properties"]["parameters"]
        parameters = next(s for s in parameters.get("anyOf", [parameters]) if s.get("type") == "object")
        assert parameters == task.parameters_schema(), task.name
    generation = schema["components"]["schemas"]["GenerateRequest"]["properties"]["parameters"]["anyOf"][0]
    assert generation["properties"]["max_new_tokens"]["anyOf"][0] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 4096,
    }
    assert generation["properties"]["stop"]["anyOf"][0]["maxItems"] == 4
    stream = schema["components"]["schemas"]["GenerateStreamRequest"]["properties"]["parameters"]["anyOf"][0]
    assert stream["properties"]["best_of"]["anyOf"][0]["maximum"] == 1
    zero_shot = schema["components"]["schemas"]["ZeroShotClassificationRequest"]
    assert "parameters" in zero_shot["required"]
    assert zero_shot["properties"]["parameters"]["required"] == ["candidate_labels"]


def test_model_ids_are_the_served_models_that_can_answer(tmp_path):
    schema = build_openapi(_entries(tmp_path))
    paths = schema["paths"]

    def models(path):
        [param] = paths[path]["post"]["parameters"]
        return param["schema"]["enum"]

    assert models("/models/{model_id}/pipeline/text-classification") == ["toy/text", "toy/slow", "toy/lazy"]
    assert models("/models/{model_id}/generate") == ["toy/llm", "toy/slow-llm"]
    assert models("/models/{model_id}/embed") == ["toy/minilm"]
    chat_model = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"]["anyOf"][0]
    assert chat_model["enum"][:2] == ["toy/llm", "toy/slow-llm"] and "dummy" in chat_model["enum"]
    # the bare model URL, once per model, with that model's tasks only
    vision = paths["/models/toy/vision"]["post"]["requestBody"]["content"]
    assert len(vision["application/json"]["schema"]["anyOf"]) == len(
        [e for e in _entries(tmp_path) if e.model_id == "toy/vision"][0].tasks
    )
    assert "image/png" in vision and "audio/wav" not in vision
    for path, item in paths.items():  # every operation documents its errors in the envelope
        for method, operation in item.items():
            assert any(code.startswith("4") for code in operation["responses"]), (method, path)
    assert "security" not in schema and build_openapi([], api_key=True)["security"] == [{"bearer": []}]


async def test_a_405_lists_every_method_of_the_path(tmp_path):
    async with running(tmp_path) as client:
        bare = await client.delete("/models/toy/text")
        embed = await client.put("/models/toy/minilm/embed")
        chat = await client.get("/v1/chat/completions")
    assert bare.status_code == 405 and set(bare.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert embed.status_code == 405 and embed.headers["allow"] == "POST"
    assert embed.json()["error_type"] == "bad_request"
    # an OpenAI path answers in OpenAI's envelope, as its schema says, even when no route takes the method
    assert chat.status_code == 405 and chat.json()["error"]["message"].startswith("GET is not allowed")


async def test_a_model_id_no_hub_repo_can_have_is_a_404_not_a_500(tmp_path):
    # found by the fuzzer: huggingface_hub refuses to look "y." up in its cache with an exception
    async with running(tmp_path) as client:
        answers = [
            await client.get("/status/y."),
            await client.post("/models/a--b/pipeline/text-classification", json={"inputs": "x"}),
        ]
    assert [a.status_code for a in answers] == [404, 404]
    assert all(a.json()["error_type"] == "not_found" for a in answers)
