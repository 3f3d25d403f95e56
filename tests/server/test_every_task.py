"""Every task the transformers backend serves, end to end: tiny random models behind the real server on uvicorn,
called by inferd's InferenceClient, by huggingface_hub's InferenceClient and by the openai client, unchanged.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

pytest.importorskip("transformers")
os.environ.setdefault("INFERD_TORCH_THREADS", "1")

import soundfile  # noqa: E402
from PIL import Image  # noqa: E402
from tinyserver import tiny_server  # noqa: E402

# model id -> (tiny model folder's task, tasks served)
MODELS = {
    "tiny/text-classification": ("text-classification", ("text-classification",)),
    "tiny/token-classification": ("token-classification", ("token-classification",)),
    "tiny/question-answering": ("question-answering", ("question-answering",)),
    "tiny/fill-mask": ("fill-mask", ("fill-mask",)),
    "tiny/zero-shot-classification": ("zero-shot-classification", ("zero-shot-classification",)),
    "tiny/table-question-answering": ("table-question-answering", ("table-question-answering",)),
    "tiny/summarization": ("summarization", ("summarization",)),
    "tiny/translation": ("translation", ("translation",)),
    "tiny/feature-extraction": ("feature-extraction", ("feature-extraction",)),
    "tiny/sentence-embeddings": ("sentence-similarity", ("feature-extraction",)),
    "tiny/sentence-similarity": ("sentence-similarity", ("sentence-similarity",)),
    "tiny/image-classification": ("image-classification", ("image-classification",)),
    "tiny/object-detection": ("object-detection", ("object-detection",)),
    "tiny/image-segmentation": ("image-segmentation", ("image-segmentation",)),
    "tiny/image-to-text": ("image-to-text", ("image-to-text",)),
    "tiny/image-to-image": ("image-to-image", ("image-to-image",)),
    "tiny/zero-shot-image-classification": (
        "zero-shot-image-classification",
        ("zero-shot-image-classification",),
    ),
    "tiny/visual-question-answering": ("visual-question-answering", ("visual-question-answering",)),
    "tiny/document-question-answering": ("document-question-answering", ("document-question-answering",)),
    "tiny/automatic-speech-recognition": ("automatic-speech-recognition", ("automatic-speech-recognition",)),
    "tiny/audio-classification": ("audio-classification", ("audio-classification",)),
    "tiny/text-to-speech": ("text-to-speech", ("text-to-speech",)),
    "tiny/llm": ("text-generation", ("text-generation", "conversational", "chat-completion")),
}
WORD_BOXES = [["total", [0, 0, 10, 10]], ["amount", [10, 0, 20, 10]], ["42", [20, 0, 30, 10]]]
TABLE = {"Repository": ["Transformers", "Datasets"], "Stars": ["36542", "4512"]}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 30, 200)).save(out, format="PNG")
    return out.getvalue()


def _wav() -> bytes:
    out = io.BytesIO()
    samples = np.random.default_rng(0).uniform(-0.3, 0.3, 8000).astype(np.float32)
    soundfile.write(out, samples, 8000, format="WAV")
    return out.getvalue()


PNG, WAV = _png(), _wav()


@pytest.fixture(scope="module")
def base_url(tiny_models, tmp_path_factory):
    """The real app on uvicorn in a background thread, every tiny model preloaded and the default for its tasks
    (the token-level feature extractor for feature-extraction)."""
    models = {
        model_id: (folder, tasks, () if model_id == "tiny/sentence-embeddings" else tasks)
        for model_id, (folder, tasks) in MODELS.items()
    }
    with tiny_server(tiny_models, tmp_path_factory.mktemp("every-task"), models) as url:
        yield url


def url(base: str, model_id: str) -> str:
    return f"{base}/models/{model_id}"


def text_of(result, key):
    """inferd returns the text; huggingface_hub returns the output object (a dict subclass)."""
    return result if isinstance(result, str) else result[key]


def labels(result, allowed=None, n=None):
    assert isinstance(result, list) and result
    scores = [float(x["score"]) for x in result]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(x["label"], str) for x in result)
    if allowed is not None:
        assert {x["label"] for x in result} <= set(allowed)
    if n is not None:
        assert len(result) == n
    return True


# task -> (model id, call(client for that model's URL) -> result, check(result) -> bool)
CALLS = {
    "text-classification": (
        "tiny/text-classification",
        lambda c: c.text_classification("I like you", top_k=2),
        lambda r: labels(r, {"NEGATIVE", "POSITIVE", "NEUTRAL"}, n=2),
    ),
    "token-classification": (
        "tiny/token-classification",
        lambda c: c.token_classification("My name is Sarah Jessica Parker"),
        lambda r: r and all({"entity_group", "score", "word", "start", "end"} <= set(e) for e in r),
    ),
    "question-answering": (
        "tiny/question-answering",
        lambda c: c.question_answering("What is my name?", "My name is Sarah"),
        lambda r: isinstance(r["answer"], str) and isinstance(r["score"], float) and r["end"] >= r["start"],
    ),
    "fill-mask": (
        "tiny/fill-mask",
        lambda c: c.fill_mask("The goal of life is [MASK].", top_k=2),
        lambda r: len(r) == 2 and all({"sequence", "score", "token", "token_str"} <= set(x) for x in r),
    ),
    "zero-shot-classification": (
        "tiny/zero-shot-classification",
        lambda c: c.zero_shot_classification("I love you", candidate_labels=["happy", "sad"]),
        lambda r: labels(r, {"happy", "sad"}, n=2),
    ),
    "table-question-answering": (
        "tiny/table-question-answering",
        lambda c: c.table_question_answering(TABLE, "how many stars"),
        lambda r: {"answer", "coordinates", "cells", "aggregator"} <= set(r) and isinstance(r["cells"], list),
    ),
    "summarization": (
        "tiny/summarization",
        lambda c: c.summarization("The tower is tall"),
        lambda r: isinstance(text_of(r, "summary_text"), str),
    ),
    "translation": (
        "tiny/translation",
        lambda c: c.translation("hello world"),
        lambda r: isinstance(text_of(r, "translation_text"), str),
    ),
    "feature-extraction": (
        "tiny/feature-extraction",
        lambda c: c.feature_extraction("hello world"),
        lambda r: (
            isinstance(r, np.ndarray) and r.dtype == np.float32 and r.shape[0] == 1 and r.shape[2] == 32
        ),
    ),
    "sentence-embeddings": (
        "tiny/sentence-embeddings",
        lambda c: c.feature_extraction("hello world"),
        lambda r: r.shape == (32,) and abs(float(np.linalg.norm(r)) - 1) < 1e-4,
    ),
    "sentence-similarity": (
        "tiny/sentence-similarity",
        lambda c: c.sentence_similarity("hello world", other_sentences=["hello world", "paris"]),
        lambda r: len(r) == 2 and abs(r[0] - 1) < 1e-4 and all(isinstance(s, float) for s in r),
    ),
    "image-classification": (
        "tiny/image-classification",
        lambda c: c.image_classification(PNG),
        lambda r: labels(r, {"tabby cat", "golden retriever", "airliner"}),
    ),
    "object-detection": (
        "tiny/object-detection",
        lambda c: c.object_detection(PNG, threshold=0.0),
        lambda r: r and all(set(d["box"]) == {"xmin", "ymin", "xmax", "ymax"} for d in r),
    ),
    "image-segmentation": (
        "tiny/image-segmentation",
        lambda c: c.image_segmentation(PNG),
        lambda r: r and all(isinstance(s["mask"], Image.Image) and s["mask"].size == (40, 30) for s in r),
    ),
    "image-to-image": (
        "tiny/image-to-image",
        lambda c: c.image_to_image(PNG),
        lambda r: isinstance(r, Image.Image) and r.size == (80, 60),  # Swin2SR x2
    ),
    "image-to-text": (
        "tiny/image-to-text",
        lambda c: c.image_to_text(PNG),
        lambda r: isinstance(text_of(r, "generated_text"), str),
    ),
    "zero-shot-image-classification": (
        "tiny/zero-shot-image-classification",
        lambda c: c.zero_shot_image_classification(PNG, candidate_labels=["cat", "dog"]),
        lambda r: labels(r, {"cat", "dog"}, n=2),
    ),
    "visual-question-answering": (
        "tiny/visual-question-answering",
        lambda c: c.visual_question_answering(PNG, "who is in the picture?", top_k=2),
        lambda r: len(r) == 2 and all(isinstance(a["answer"], str) for a in r),
    ),
    "document-question-answering": (
        "tiny/document-question-answering",
        lambda c: c.document_question_answering(PNG, "what is the total?", word_boxes=WORD_BOXES),
        lambda r: r and all(isinstance(a["answer"], str) for a in r),
    ),
    "automatic-speech-recognition": (
        "tiny/automatic-speech-recognition",
        lambda c: c.automatic_speech_recognition(WAV),
        lambda r: isinstance(text_of(r, "text"), str),
    ),
    "audio-classification": (
        "tiny/audio-classification",
        lambda c: c.audio_classification(WAV),
        lambda r: labels(r, {"speech", "music", "noise"}),
    ),
    "text-to-speech": (
        "tiny/text-to-speech",
        lambda c: c.text_to_speech("hello world"),
        lambda r: soundfile.read(io.BytesIO(r))[0].size > 0,
    ),
    "text-generation": (
        "tiny/llm",
        lambda c: c.text_generation("Hello world", max_new_tokens=4, details=True),
        lambda r: r.details.generated_tokens == 4 and r.details.finish_reason == "length",
    ),
}


@pytest.mark.parametrize("task", sorted(CALLS))
def test_inferd_client(base_url, task):
    from inferd import InferenceClient

    model_id, call, check = CALLS[task]
    assert check(call(InferenceClient(model=url(base_url, model_id), timeout=120)))


@pytest.mark.parametrize("task", sorted(CALLS))
def test_huggingface_hub_client(base_url, task):
    from huggingface_hub import InferenceClient

    model_id, call, check = CALLS[task]
    assert check(call(InferenceClient(model=url(base_url, model_id), timeout=120)))


def test_inferd_client_conversational(base_url):
    from inferd import InferenceClient

    client = InferenceClient(model=url(base_url, "tiny/llm"), timeout=120)
    out = client.conversational("Hi!", generated_responses=["hey"], past_user_inputs=["hello"])
    assert out["conversation"]["past_user_inputs"] == ["hello", "Hi!"]
    assert out["conversation"]["generated_responses"][-1] == out["generated_text"]


@pytest.mark.parametrize("client_name", ["inferd", "huggingface_hub"])
def test_text_generation_streams_token_by_token(base_url, client_name):
    module = __import__(client_name, fromlist=["InferenceClient"])
    client = module.InferenceClient(model=url(base_url, "tiny/llm"), timeout=120)
    whole = client.text_generation("Hello world", max_new_tokens=5, details=True, return_full_text=False)
    steps = list(client.text_generation("Hello world", max_new_tokens=5, stream=True, details=True))
    assert len(steps) == 5 and [s.details is not None for s in steps] == [False] * 4 + [True]
    assert [s.token.id for s in steps] == [t.id for t in whole.details.tokens]
    assert "".join(s.token.text for s in steps) == whole.generated_text
    full = client.text_generation("Hello world", max_new_tokens=5, return_full_text=True)
    assert full == "Hello world" + whole.generated_text  # the prompt once, added by the server


def test_openai_chat_completion_plain_and_streamed(base_url):
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)
    messages = [{"role": "user", "content": "Hello world"}]
    answer = client.chat.completions.create(model="tiny/llm", messages=messages, max_tokens=12)
    assert answer.choices[0].finish_reason == "length" and answer.usage.completion_tokens == 12
    chunks = client.chat.completions.create(
        model="tiny/llm",
        messages=messages,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(chunks)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == answer.choices[0].message.content
    # one chunk per token, not one blob (a token ending inside a UTF-8 character adds no text of its own)
    assert 1 < len(pieces) <= 12 and chunks[-1].usage.completion_tokens == 12


def test_huggingface_hub_table_question_answering_with_model_per_call(base_url):
    # huggingface_hub <1.0 puts a per-call `model=` inside `parameters` for this task; the server must ignore it.
    from huggingface_hub import InferenceClient

    answer = InferenceClient(timeout=120).table_question_answering(
        TABLE, "how many stars", model=url(base_url, "tiny/table-question-answering")
    )
    assert {"answer", "coordinates", "cells", "aggregator"} <= set(answer)


def test_the_make_run_tour_calls_every_task_the_server_has_a_default_for(
    base_url, capsys, monkeypatch, tmp_path
):
    # `make run` is `python -m inferd.tour`: it starts `inferd serve` with the default models, then this.
    from inferd.tour import OUT, tour

    monkeypatch.chdir(tmp_path)
    failed = tour(base_url)
    out = capsys.readouterr().out
    assert failed == 0 and "\n! " not in out, out
    done = {line.split()[1] for line in out.splitlines() if line.startswith("- ") and "(skipped)" not in line}
    tour_tasks = {
        "text-classification",
        "token-classification",
        "feature-extraction",
        "sentence-similarity",
        "zero-shot-classification",
        "text-generation",
        "summarization",
        "question-answering",
        "translation",
        "text-to-speech",
        "automatic-speech-recognition",
        "audio-classification",
        "image-classification",
        "object-detection",
        "image-segmentation",
        "image-to-text",
        "image-to-image",
    }
    assert done == tour_tasks | {"chat-completion"}, out
    assert "- tabular-classification" in out and "no model installed for this task (skipped)" in out
    assert (tmp_path / OUT / "speech.flac").stat().st_size > 0 and (tmp_path / OUT / "mask.png").exists()
