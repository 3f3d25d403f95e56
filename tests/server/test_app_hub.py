"""Read-only routes: /api/tasks, /api/models, /status, /framework, /health, /info, /metrics, /openapi.json."""

import pytest
from appkit import running

from inferd.tasks import TASKS


@pytest.fixture
async def client(tmp_path):
    async with running(tmp_path) as c:
        yield c


async def test_api_tasks_has_the_hub_shape_with_this_servers_defaults(client):
    tasks = (await client.get("/api/tasks")).json()
    assert tasks["text-classification"]["widgetModels"] == ["toy/text"]
    assert tasks["text-classification"]["id"] == "text-classification"
    assert tasks["text-classification"]["label"] == "Text Classification"
    assert {"id": "toy/slow", "description": "toy/slow"} in tasks["text-classification"]["models"]
    assert tasks["sentence-similarity"]["widgetModels"] == ["toy/minilm"]
    assert tasks["text-to-image"]["approximation"] == "draws a red rectangle"
    assert "chat-completion" in tasks
    assert tasks["conversational"]["widgetModels"] == []  # listed, with a note on how to serve it


async def test_model_info_status_framework(client):
    info = (await client.get("/api/models/toy/minilm")).json()
    assert info["pipeline_tag"] == "feature-extraction" and info["id"] == "toy/minilm"
    assert "sentence-similarity" in info["tags"]
    status = (await client.get("/status/toy/text")).json()
    assert status == {"loaded": True, "state": "Loaded", "compute_type": "cpu", "framework": "toy"}
    assert (await client.get("/status/toy/lazy")).json()["state"] == "Loadable"
    rows = (await client.get("/framework/toy")).json()
    assert {
        "model_id": "toy/minilm",
        "task": "sentence-similarity",
        "compute_type": "cpu",
        "framework": "toy",
    } in rows
    assert (await client.get("/framework/other")).json() == []
    assert len((await client.get("/api/models")).json()) == 10


async def test_health_info_metrics(client):
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/models/toy/llm/health")).json()["loaded"] is True
    info = (await client.get("/info")).json()
    assert info["model_id"] == "toy/llm" and info["router"] == "inferd" and info["max_stop_sequences"] == 4
    assert (await client.get("/models/toy/text/info")).json()["model_pipeline_tag"] == "text-classification"
    r = await client.post("/models/toy/text", json={"inputs": "x"})
    assert "x-queue-time" in r.headers and "x-inference-time" in r.headers
    metrics = (await client.get("/metrics")).text
    assert 'inferd_request_total{model="toy/text",status="200",task="text-classification"} 1.0' in metrics
    assert "inferd_request_queue_duration_seconds_count" in metrics
    assert 'inferd_batch_size_bucket{le="1",model="toy/text",task="text-classification"}' in metrics
    assert 'inferd_model_load_total{model="toy/text",ok="true"}' in metrics
    assert 'model="-"' not in metrics  # catalogue and status routes are not inference requests


async def test_openapi_lists_every_task_with_its_parameters(client):
    schema = (await client.get("/openapi.json")).json()
    for task in TASKS.values():
        assert f"/models/{{model_id}}/pipeline/{task.name}" in schema["paths"], task.name
    request = schema["components"]["schemas"]["TextClassificationRequest"]
    parameters = request["properties"]["parameters"]["anyOf"][0]  # or null
    assert parameters["properties"]["top_k"]["anyOf"][0]["minimum"] == 1
    assert (
        "/v1/chat/completions" in schema["paths"] and "/models/{model_id}/generate_stream" in schema["paths"]
    )
    assert (await client.get("/docs")).status_code == 200


async def test_model_ids_with_suffix_like_routes_are_not_swallowed(client):
    # /models/{id:path} must not eat /generate, /pipeline/..., /v1/chat/completions, /info
    assert (await client.post("/models/toy/llm/generate", json={"inputs": "x"})).json()["generated_text"]
    assert (await client.get("/models/toy/llm/info")).json()["model_id"] == "toy/llm"
    r = await client.post("/models/toy/minilm/pipeline/feature-extraction", json={"inputs": "x"})
    assert r.json() == [1.0, 2.0, 3.0, 4.0]
