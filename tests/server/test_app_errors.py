"""Bad input to every route is a 4xx naming the problem, the server stays up; limits, auth, 429, 503, 504, 500."""

import asyncio
import base64

import pytest
from appkit import running

from inferd.server.settings import ServerSettings

IMG = "/models/toy/vision/pipeline/image-classification"
BAD_INPUTS = [
    # (url, request kwargs, status, words the message must contain)
    ("/models/toy/text", {"content": b""}, 400, "empty"),
    ("/models/toy/text", {"content": b"{oops", "headers": {"content-type": "application/json"}}, 400, "JSON"),
    ("/models/toy/text", {"json": {"inputs": ""}}, 400, "`inputs` is empty"),
    ("/models/toy/text", {"json": {"inputs": {"a": 1}}}, 400, "`inputs` must be a string"),
    ("/models/toy/text", {"json": {"parameters": {}}}, 400, "Missing field `inputs`"),
    ("/models/toy/text", {"json": {"inputs": "x", "parameters": {"top_k": 0}}}, 400, "top_k"),
    ("/models/toy/text", {"json": {"inputs": "x", "parameters": {"nope": 1}}}, 400, "nope"),
    ("/models/toy/text", {"json": {"inputs": "x", "parameters": [1]}}, 400, "`parameters` must be an object"),
    ("/models/toy/text", {"json": {"inputs": "x", "surprise": 1}}, 400, "surprise"),
    ("/models/toy/text", {"json": {"inputs": "x", "options": 3}}, 400, "`options`"),
    ("/models/toy/text", {"content": b"\xff\xd8\xff\x00binary"}, 400, "binary"),
    (
        "/models/toy/text/pipeline/zero-shot-classification",
        {"json": {"inputs": "x"}},
        400,
        "candidate_labels",
    ),
    ("/models/toy/text/pipeline/question-answering", {"json": {"question": "q"}}, 400, "`context`"),
    (
        "/models/toy/text/pipeline/tabular-classification",
        {"json": {"table": {"a": ["1"], "b": []}}},
        400,
        "same length",
    ),
    ("/models/toy/text/pipeline/tabular-regression", {"json": {"inputs": "x"}}, 400, "Missing table"),
    (
        "/models/toy/text/pipeline/table-question-answering",
        {"json": {"table": [], "query": "q"}},
        400,
        "`table`",
    ),
    (
        "/models/toy/minilm/pipeline/sentence-similarity",
        {"json": {"inputs": {"source_sentence": "a"}}},
        400,
        "sentences",
    ),
    ("/models/toy/minilm", {"json": {"inputs": None}}, 400, "tried tasks"),
    (IMG, {"content": b"not an image", "headers": {"content-type": "image/png"}}, 400, "not an image"),
    (IMG, {"json": {"inputs": "https://example.com/cat.png"}}, 400, "does not fetch URLs"),
    (IMG, {"json": {"inputs": "@@@not base64@@@"}}, 400, "base64"),
    (IMG, {"json": {"inputs": base64.b64encode(b"GIF89a nope").decode()}}, 400, "not an image"),
    (IMG, {"json": {"inputs": 12}}, 400, "base64"),
    (
        "/models/toy/audio",
        {"content": b"RIFF....WAVEjunk", "headers": {"content-type": "audio/wav"}},
        400,
        "not audio",
    ),
    ("/models/toy/vision/pipeline/visual-question-answering", {"content": b"\x89PNG"}, 400, "JSON"),
    ("/models/toy/text/pipeline/no-such-task", {"json": {"inputs": "x"}}, 404, "Unknown task"),
    ("/pipeline/image-classification/toy/text", {"json": {"inputs": "x"}}, 400, "does not serve"),
    ("/models/no/such-model", {"json": {"inputs": "x"}}, 404, "no/such-model"),
    ("/models/toy/text", {"json": {"inputs": "reject"}}, 422, "refuses"),
    (
        "/models/toy/llm/generate",
        {"content": b"[1]", "headers": {"content-type": "application/json"}},
        422,
        "JSON object",
    ),
    ("/models/toy/llm/generate_stream", {"json": {"parameters": {}}}, 422, "inputs"),
    (
        "/models/toy/llm/generate_stream",
        {"json": {"inputs": "x", "parameters": {"best_of": 2}}},
        422,
        "best_of",
    ),
    ("/models/toy/text/generate", {"json": {"inputs": "x"}}, 400, "does not generate text"),
    ("/v1/chat/completions", {"content": b"hello"}, 400, "JSON object"),
    ("/", {"json": {"inputs": "x"}}, 404, "POST to /models/"),
]


@pytest.fixture
async def client(tmp_path):
    async with running(tmp_path) as c:
        yield c


async def test_bad_input_to_every_route_is_a_clear_4xx_and_the_server_stays_up(client):
    for url, kwargs, status, words in BAD_INPUTS:
        r = await client.post(url, **kwargs)
        assert r.status_code == status, (url, kwargs, r.text)
        body = r.json()
        message = body["error"]["message"] if isinstance(body["error"], dict) else body["error"]
        assert words in message, (url, message)
        if not isinstance(body["error"], dict):
            assert body["error_type"]
    ok = await client.post("/models/toy/text", json={"inputs": "I love it"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "url", ["/status/no/model", "/api/models/no/model", "/models/no/model/info", "/models/no/model/health"]
)
async def test_bad_get_routes_are_404_json(client, url):
    r = await client.get(url)
    assert r.status_code == 404 and r.json()["error_type"] == "not_found"


async def test_unknown_route_and_method_are_json(client):
    r = await client.get("/nope")
    assert r.status_code == 404 and r.json()["error_type"] == "not_found"
    r = await client.delete("/models/toy/text")
    assert r.status_code == 405 and "DELETE" in r.json()["error"]


async def test_model_errors_are_500_without_details(client):
    r = await client.post("/models/toy/text", json={"inputs": "boom"})
    assert r.status_code == 500 and r.json() == {"error": "internal error", "error_type": "internal"}
    assert (await client.post("/models/toy/text", json={"inputs": "fine"})).status_code == 200


async def test_loading_503_carries_estimated_time_when_the_client_will_not_wait(client):
    r = await client.post("/models/toy/lazy", json={"inputs": "x", "options": {"wait_for_model": False}})
    assert r.status_code == 503
    body = r.json()
    assert body["error_type"] == "model_loading" and body["error"] == "Model toy/lazy is currently loading"
    assert isinstance(body["estimated_time"], float) and int(r.headers["retry-after"]) >= 1
    r = await client.post("/models/toy/lazy", json={"inputs": "x", "options": {"wait_for_model": True}})
    assert r.status_code == 200
    status = (await client.get("/status/toy/lazy")).json()
    assert status["loaded"] is True and status["state"] == "Loaded"


async def test_wait_for_model_header(client):
    r = await client.post("/models/toy/lazy", json={"inputs": "x"}, headers={"X-Wait-For-Model": "true"})
    assert r.status_code == 200


async def test_body_limits_413_json_and_media(tmp_path):
    settings = ServerSettings(max_json_bytes=100, max_media_bytes=1000)
    async with running(tmp_path, settings) as client:
        r = await client.post("/models/toy/text", json={"inputs": "x" * 200})
        assert r.status_code == 413 and r.json()["error_type"] == "payload_too_large"

        async def chunks():  # no content-length: the limit is enforced while the body streams in
            for _ in range(50):
                yield b"x" * 50

        r = await client.post("/models/toy/text", content=chunks())
        assert r.status_code == 413
        r = await client.post(IMG, content=b"x" * 500, headers={"content-type": "image/png"})
        assert r.status_code == 400  # under the media limit: read, then refused as not an image
        r = await client.post(IMG, content=b"x" * 1500, headers={"content-type": "image/png"})
        assert r.status_code == 413
        r = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 200}]}
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_overloaded_429_with_retry_after(tmp_path):
    async with running(tmp_path, max_queue_per_model=1, max_batch_size=1) as client:
        answers = await asyncio.gather(
            *(client.post("/models/toy/slow", json={"inputs": f"x{i}"}) for i in range(5))
        )
        statuses = sorted(r.status_code for r in answers)
        assert 200 in statuses and 429 in statuses
        shed = next(r for r in answers if r.status_code == 429)
        assert shed.json()["error_type"] == "overloaded" and int(shed.headers["retry-after"]) >= 1


async def test_request_time_limit_504(tmp_path):
    async with running(tmp_path, ServerSettings(request_timeout_s=0.1)) as client:
        r = await client.post("/models/toy/slow", json={"inputs": "x"})
        assert r.status_code == 504 and r.json()["error_type"] == "timeout"
