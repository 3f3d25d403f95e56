"""/v1/embeddings and /v1/completions with the real openai SDK, over tiny real models on uvicorn: the vectors
are the feature-extraction route's, the completions are the TGI route's greedy text."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import openai
import pytest

pytest.importorskip("transformers")

from appkit import running  # noqa: E402
from tinyserver import tiny_server  # noqa: E402

from inferd.backends.base import estimate_tokens  # noqa: E402

MODELS = {
    "tiny/embedder": (
        "sentence-similarity",
        ("feature-extraction", "sentence-similarity"),
        ("feature-extraction",),
    ),
    "tiny/token-vectors": ("feature-extraction", ("feature-extraction",), ()),
    "tiny/llm": ("text-generation", ("text-generation",), ("text-generation",)),
}
TEXTS = ["hello world", "machine learning is so easy", "the tower is tall"]


@pytest.fixture(scope="module")
def base(tiny_models, tmp_path_factory):
    with tiny_server(tiny_models, tmp_path_factory.mktemp("openai-extra"), MODELS) as url:
        yield url


@pytest.fixture(scope="module")
def sdk(base):
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def http(base):
    with httpx.Client(base_url=base, timeout=60) as client:
        yield client


def pipeline_vectors(http, model_id, texts, **params):
    r = http.post(f"/models/{model_id}/pipeline/feature-extraction", json={"inputs": texts, **params})
    assert r.status_code == 200, r.text
    return np.asarray(r.json(), dtype=np.float32)


# ---- /v1/embeddings -------------------------------------------------------------------------------------
def test_float_embeddings_are_the_feature_extraction_vectors(sdk, http):
    out = sdk.embeddings.create(model="tiny/embedder", input=TEXTS, encoding_format="float")
    assert out.object == "list" and out.model == "tiny/embedder"
    assert [d.index for d in out.data] == [0, 1, 2] and {d.object for d in out.data} == {"embedding"}
    got = np.asarray([d.embedding for d in out.data], dtype=np.float32)
    assert got.shape == (3, 32)
    assert np.allclose(got, pipeline_vectors(http, "tiny/embedder", TEXTS), atol=1e-6)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # the folder's Normalize module
    tokens = sum(estimate_tokens(t) for t in TEXTS)
    assert out.usage.prompt_tokens == out.usage.total_tokens == tokens


def test_base64_embeddings_the_sdk_default_decode_to_the_same_vectors(sdk, http):
    out = sdk.embeddings.create(model="tiny/embedder", input="hello world")  # the SDK asks for base64
    [expected] = pipeline_vectors(http, "tiny/embedder", ["hello world"])
    assert np.allclose(out.data[0].embedding, expected, atol=1e-6)
    raw = http.post(
        "/v1/embeddings", json={"model": "tiny/embedder", "input": "hello world", "encoding_format": "base64"}
    )
    encoded = raw.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    assert np.array_equal(np.frombuffer(base64.b64decode(encoded), dtype="<f4"), expected)


def test_dimensions_are_the_first_values_renormalised(sdk, http):
    out = sdk.embeddings.create(model="tiny/embedder", input=TEXTS[:2], dimensions=8, encoding_format="float")
    got = np.asarray([d.embedding for d in out.data], dtype=np.float32)
    full = pipeline_vectors(http, "tiny/embedder", TEXTS[:2], normalize=False)
    cut = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    assert got.shape == (2, 8) and np.allclose(got, cut, atol=1e-5)


def test_default_model_and_the_model_prefix(base, sdk):
    assert sdk.embeddings.create(model="dummy", input="hi").model == "tiny/embedder"
    raw = httpx.post(f"{base}/v1/embeddings", json={"input": "hi"}, timeout=30)  # no model at all
    assert raw.json()["model"] == "tiny/embedder"
    prefixed = openai.OpenAI(base_url=f"{base}/models/tiny/embedder/v1", api_key="x", max_retries=0)
    assert prefixed.embeddings.create(model="whatever", input="hi").model == "tiny/embedder"
    alias = httpx.post(f"{base}/embeddings", json={"input": "hi", "model": "tiny/embedder"}, timeout=30)
    assert alias.status_code == 200 and alias.json()["data"][0]["object"] == "embedding"


def test_token_id_inputs_are_a_clear_400(sdk):
    for tokens in ([15339, 1917], [[15339, 1917], [1234]]):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.embeddings.create(model="tiny/embedder", input=tokens)
        assert (
            "not token ids" in caught.value.message and "check_embedding_ctx_length" in caught.value.message
        )
        assert caught.value.body["param"] == "input"


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"model": "tiny/embedder"}, 400, "input"),
        ({"model": "tiny/embedder", "input": []}, 400, "input"),
        ({"model": "tiny/embedder", "input": ["ok", ""]}, 400, "input"),
        ({"model": "tiny/embedder", "input": ["ok", 3.5]}, 400, "input"),
        ({"model": "tiny/embedder", "input": "hi", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"model": "tiny/embedder", "input": "hi", "dimensions": 0}, 400, "dimensions"),
        ({"model": "tiny/embedder", "input": "hi", "dimensions": "8"}, 400, "dimensions"),
        ({"model": "tiny/embedder", "input": "hi", "dimensions": 4096}, 422, None),  # more than the model has
        ({"model": 7, "input": "hi"}, 400, "model"),
        ({"model": "nope/nope", "input": "hi"}, 404, None),
        ({"model": "tiny/llm", "input": "hi"}, 400, None),  # not an embedding model
        ({"model": "tiny/token-vectors", "input": "hi"}, 400, None),  # one vector per token, no pooling
    ],
)
def test_embedding_errors_use_the_openai_envelope(http, body, status, param):
    r = http.post("/v1/embeddings", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["param"] == param and error["code"] == r.json()["error_type"]


def test_embeddings_body_that_is_not_a_json_object(http):
    r = http.post("/v1/embeddings", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "`input`" in r.json()["error"]["message"]


# ---- /v1/completions ------------------------------------------------------------------------------------
def tgi_greedy(http, prompt, n):
    body = {"inputs": prompt, "parameters": {"max_new_tokens": n, "do_sample": False}}
    r = http.post("/models/tiny/llm/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()["generated_text"]


def test_completion_is_the_tgi_greedy_text(sdk, http):
    expected = tgi_greedy(http, "Hello world", 6)
    out = sdk.completions.create(model="tiny/llm", prompt="Hello world", max_tokens=6, temperature=0)
    assert out.object == "text_completion" and out.model == "tiny/llm" and out.id.startswith("cmpl-")
    [choice] = out.choices
    assert choice.text == expected and choice.index == 0 and choice.logprobs is None
    assert choice.finish_reason == "length"
    assert out.usage.completion_tokens == 6 and out.usage.prompt_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + 6
    echoed = sdk.completions.create(
        model="tiny/llm", prompt=["Hello world"], max_tokens=6, temperature=0, echo=True
    )
    assert echoed.choices[0].text == "Hello world" + expected


def test_completion_stream_is_the_same_text(sdk, http):
    expected = tgi_greedy(http, "Machine learning", 5)
    chunks = list(
        sdk.completions.create(
            model="tiny/llm",
            prompt="Machine learning",
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {c.object for c in chunks} == {"text_completion"} and len({c.id for c in chunks}) == 1
    assert "".join(c.choices[0].text for c in chunks if c.choices) == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5


def test_completion_default_model_and_model_prefix(base, sdk, http):
    expected = tgi_greedy(http, "Hello world", 2)
    assert (
        sdk.completions.create(model="tgi", prompt="Hello world", max_tokens=2, temperature=0).model
        == "tiny/llm"
    )
    prefixed = openai.OpenAI(base_url=f"{base}/models/tiny/llm/v1", api_key="x", max_retries=0)
    out = prefixed.completions.create(model="x", prompt="Hello world", max_tokens=2, temperature=0)
    assert out.choices[0].text == expected


@pytest.mark.parametrize(
    "body, status, param",
    [
        ({"model": "tiny/llm"}, 400, "prompt"),
        ({"model": "tiny/llm", "prompt": ""}, 400, "prompt"),
        ({"model": "tiny/llm", "prompt": ["a", "b"]}, 400, "prompt"),
        ({"model": "tiny/llm", "prompt": [1, 2, 3]}, 400, "prompt"),
        ({"model": "tiny/llm", "prompt": {"text": "a"}}, 400, "prompt"),
        ({"model": "tiny/llm", "prompt": "a", "logprobs": 2}, 400, "logprobs"),
        ({"model": "tiny/llm", "prompt": "a", "suffix": "z"}, 400, "suffix"),
        ({"model": "tiny/llm", "prompt": "a", "best_of": 3}, 400, "best_of"),
        ({"model": "tiny/llm", "prompt": "a", "n": 2}, 400, "n"),
        ({"model": "tiny/llm", "prompt": "a", "echo": "yes"}, 400, "echo"),
        ({"model": "tiny/llm", "prompt": "a", "max_tokens": 0}, 422, None),
        ({"model": "tiny/llm", "prompt": "a", "temperature": -1}, 422, None),
        ({"model": "nope/nope", "prompt": "a"}, 404, None),
        ({"model": "tiny/embedder", "prompt": "a"}, 400, None),
    ],
)
def test_completion_errors_use_the_openai_envelope(http, body, status, param):
    r = http.post("/v1/completions", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["param"] == param
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")


def test_sdk_raises_on_refused_completion(sdk):
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        sdk.completions.create(model="tiny/llm", prompt="Hello", logprobs=1)


# ---- the wire details, in process over the toy generator ("w0 w1 w2 ...") -------------------------------
async def test_completion_stop_strings_and_default_max_tokens(tmp_path):
    async with running(tmp_path) as client:
        body = {"model": "toy/llm", "prompt": "hi", "max_tokens": 3, "stop": " w2"}
        r = await client.post("/v1/completions", json=body)
        assert r.json()["choices"][0]["text"] == " w0 w1"
        r = await client.post("/v1/completions", json={**body, "stream": True})
        lines = [x.removeprefix("data: ") for x in r.text.splitlines() if x.startswith("data: ")]
        assert lines[-1] == "[DONE]"
        chunks = [json.loads(x) for x in lines[:-1]]
        assert "".join(c["choices"][0]["text"] for c in chunks) == " w0 w1"
        r = await client.post("/v1/completions", json={"model": "toy/llm", "prompt": "hi"})
        assert r.json()["usage"]["completion_tokens"] == 16  # OpenAI's default max_tokens
