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
