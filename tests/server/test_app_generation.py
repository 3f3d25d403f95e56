"""TGI and OpenAI protocols over a toy text generator: shapes, streams, the model_kwargs 400, errors."""

import json

import pytest
from appkit import running


@pytest.fixture
async def client(tmp_path):
    async with running(tmp_path) as c:
        yield c


def events(text: str) -> list[str]:
    return [line.removeprefix("data:").strip() for line in text.splitlines() if line.startswith("data:")]


# What huggingface_hub 0.21 sends: every key, nulls included.
V021 = {
    "do_sample": False,
    "max_new_tokens": 2,
    "repetition_penalty": None,
    "return_full_text": False,
    "stop": [],
    "seed": None,
    "temperature": None,
    "top_k": None,
    "top_p": None,
    "truncate": None,
    "typical_p": None,
    "best_of": None,
    "watermark": False,
    "details": True,
    "decoder_input_details": False,
}


async def test_model_url_answers_tgi_compat_list_with_details(client):
    r = await client.post("/models/toy/llm", json={"inputs": "hi", "parameters": V021, "stream": False})
    assert r.status_code == 200, r.text
    [answer] = r.json()
    assert answer["generated_text"] == " w0 w1"
    details = answer["details"]
    assert details["finish_reason"] == "length" and details["generated_tokens"] == 2
    assert details["tokens"][1] == {"id": 1, "text": " w1", "logprob": -0.5, "special": False}
    r = await client.post("/models/toy/llm", json={"inputs": "hi"})  # compat default: full text
    assert r.json() == [{"generated_text": "hi w0 w1 w2"}]


async def test_generate_and_generate_stream_routes(client):
    r = await client.post(
        "/models/toy/llm/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 1}}
    )
    assert r.json() == {"generated_text": " w0"} and r.headers["x-generated-tokens"] == "1"
    r = await client.post("/generate", json={"inputs": "hi"})  # the default text-generation model
    assert r.json()["generated_text"] == " w0 w1 w2"
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 3, "details": True}}
    r = await client.post("/models/toy/llm/generate_stream", json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    steps = [json.loads(e) for e in events(r.text)]
    assert [s["token"]["text"] for s in steps] == [" w0", " w1", " w2"]
    assert [s["index"] for s in steps] == [1, 2, 3]
    assert steps[0]["generated_text"] is None and steps[0]["details"] is None
    assert steps[-1]["generated_text"] == " w0 w1 w2"
    assert steps[-1]["details"] == {
        "finish_reason": "length",
        "generated_tokens": 3,
        "seed": None,
        "input_length": 1,
    }


async def test_model_url_streams_when_asked(client):
    r = await client.post("/models/toy/llm", json={"inputs": "hi", "parameters": V021, "stream": True})
    steps = [json.loads(e) for e in events(r.text)]
    assert len(steps) == 2 and steps[-1]["details"]["generated_tokens"] == 2


async def test_parameters_the_runtime_cannot_honour_get_the_model_kwargs_400(client):
    params = {**V021, "watermark": True, "top_k": 5, "repetition_penalty": 1.2}
    r = await client.post("/models/toy/llm", json={"inputs": "hi", "parameters": params})
    assert r.status_code == 400
    assert r.json()["error"].startswith(
        "The following `model_kwargs` are not used by the model: ['repetition_penalty', 'top_k', 'watermark']"
    )


@pytest.mark.parametrize(
    "body, message",
    [
        ({"inputs": "", "parameters": {}}, "`inputs` cannot be empty"),
        ({"inputs": "hi", "parameters": {"temperature": 0}}, "temperature"),
        ({"inputs": "hi", "parameters": {"max_new_tokens": "3"}}, "max_new_tokens"),
        ({"inputs": "hi", "parameters": {"stop": ["a", "b", "c", "d", "e"]}}, "stop"),
        ({"inputs": "hi", "parameters": {"nope": 1}}, "nope"),
        ({"inputs": ["a"], "parameters": {}}, "inputs"),
    ],
)
async def test_tgi_validation_errors_are_422_validation(client, body, message):
    r = await client.post("/models/toy/llm/generate", json=body)
    assert r.status_code == 422 and r.json()["error_type"] == "validation" and message in r.json()["error"]


async def test_openai_chat_completion(client):
    body = {"model": "dummy", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "chat.completion" and out["model"] == "toy/llm"
    assert out["choices"][0]["message"] == {"role": "assistant", "content": " w0 w1"}
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    r = await client.post("/models/toy/llm/v1/chat/completions", json={**body, "model": "whatever"})
    assert r.json()["model"] == "toy/llm"


async def test_openai_stream_ends_with_done(client):
    body = {
        "model": "toy/llm",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r = await client.post("/v1/chat/completions", json=body)
    raw = events(r.text)
    assert raw[-1] == "[DONE]"
    chunks = [json.loads(e) for e in raw[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == " w0 w1"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"content": "x"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools"),
        ({"messages": [{"role": "user", "content": "x"}], "model": 5}, "model"),
    ],
)
async def test_openai_errors_use_openai_envelope(client, body, param):
    r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]
    assert r.headers["x-should-retry"] == "false"


async def test_openai_unknown_model_and_bad_json(client):
    r = await client.post(
        "/v1/chat/completions", json={"model": "nope/nope", "messages": [{"role": "user", "content": "x"}]}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


async def test_v1_models_lists_models(client):
    r = await client.get("/v1/models")
    assert r.json()["object"] == "list" and "toy/llm" in [m["id"] for m in r.json()["data"]]
