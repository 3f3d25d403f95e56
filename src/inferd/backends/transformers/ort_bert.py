"""BERT classifiers on ONNX Runtime: the encoder and its head as one graph, token ids in, logits out.

The graph is the one inferd builds from the verified safetensors (`_bert_onnx.BertSession`, the runtime of the
default MiniLM) with the classifier head in it. `direct.py` feeds it a whole batch tokenized at once and turns
its logits into answers; transformers' pipeline stays loaded for its tokenizer, config and the rare
postprocessing that direct.py leaves to it.

Why: on 2 cores torch's intra-op threads cannot be given both cores without spinning against the event loop,
so the torch path runs one thread; ONNX Runtime's non-spinning threads use both (bench/classification.py and
docs/benchmarks.md have the figures). Chosen by the entry's `options["runtime"]`: "auto" (default) uses ONNX
Runtime when the model is a plain BERT classifier and onnxruntime is installed, else torch; "onnxruntime"
requires it; "torch" keeps torch. Logits match torch's within ~1e-5.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base import InputError

if TYPE_CHECKING:
    from ...catalogue import ModelEntry

# Architecture -> the head the graph ends with (`_bert_onnx.bert_graph`).
_HEADS = {
    "BertForSequenceClassification": "sequence",
    "BertForTokenClassification": "token",
}

# Rows per forward pass, sorted by length so that a long text does not pad the short ones (as the MiniLM
# embedder does, sentence_transformers.py).
_CHUNK = 16


class OrtClassifier:
    """A BERT classifier (encoder + head) in one ONNX Runtime session."""

    def __init__(self, session: Any, kind: str, max_positions: int) -> None:
        self._session, self.kind, self.max_positions = session, kind, max_positions
        self.nbytes = int(session.nbytes)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """float32 logits: (batch, labels) for a sequence head, (batch, tokens, labels) for a token head.
        The inputs are right-padded (batch, tokens) arrays; each chunk is cut to its own longest row."""
        if input_ids.shape[1] > self.max_positions:  # the graph has no position embedding past that
            raise InputError(
                f"The input is too long for this model ({input_ids.shape[1]} tokens, at most "
                f"{self.max_positions})."
            )
        lengths = attention_mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(order), _CHUNK):
            rows = order[start : start + _CHUNK]
            width = max(int(lengths[rows].max()), 1)
            part = self._session.logits(input_ids[rows, :width], attention_mask[rows, :width])
            if out is None:
                shape = (len(order), *attention_mask.shape[1:2]) if self.kind == "token" else (len(order),)
                out = np.zeros((*shape, part.shape[-1]), np.float32)
            if self.kind == "token":
                out[rows, :width] = part
            else:
                out[rows] = part
        if out is None:
            raise ValueError("No texts to classify.")
        return out


def ort_classifier(pipe: Any, entry: ModelEntry, path: str) -> OrtClassifier | None:
    """The model on ONNX Runtime when the entry allows it and the model fits; None: it stays on torch."""
    runtime = str(entry.options.get("runtime", "auto"))
    if runtime == "torch":
        return None
    if runtime not in ("auto", "onnxruntime"):
        raise ValueError(f"Model {entry.model_id}: unknown runtime {runtime!r} (auto, onnxruntime or torch).")
    why_not = _unsupported(path) or _not_plain_bert(pipe.model) or _slow_tokenizer(pipe.tokenizer)
    if why_not:
        if runtime == "onnxruntime":
            raise ValueError(f"Model {entry.model_id}: runtime 'onnxruntime' is not possible: {why_not}.")
        return None
    from safetensors.numpy import load_file

    from .._bert_onnx import BertSession
    from ..weights import check_finite_weights

    folder = Path(path)
    config = json.loads((folder / "config.json").read_text())
    weights = load_file(str(folder / "model.safetensors"))
    check_finite_weights(weights.items(), f"Model {entry.model_id}")
    kind = _HEADS[config["architectures"][0]]
    session = BertSession(weights, config, int(entry.options.get("threads", 0)), head=kind)
    return OrtClassifier(session, kind, int(config.get("max_position_embeddings", 512)))


def _slow_tokenizer(tokenizer: Any) -> str:
    """direct.py needs a fast tokenizer's batch call and offsets."""
    return "" if getattr(tokenizer, "is_fast", False) else "it needs a fast tokenizer (tokenizer.json)"


def _unsupported(path: str) -> str:
    """Why this folder cannot run on ONNX Runtime ('' when it can)."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return "onnxruntime and onnx are not installed (pip install 'inferd[models-text]')"
    folder = Path(path)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return "no readable config.json"
    architectures = config.get("architectures") or []
    if config.get("model_type") != "bert" or len(architectures) != 1 or architectures[0] not in _HEADS:
        return f"only {', '.join(sorted(_HEADS))} are built for it (this is {architectures or 'unknown'})"
    if (
        config.get("hidden_act", "gelu") != "gelu"
        or config.get("position_embedding_type", "absolute") != "absolute"
    ):
        return "only BERT with GELU and absolute positions is built for it"
    if not (folder / "model.safetensors").is_file():
        return "it needs a single model.safetensors file"
    return ""


def _not_plain_bert(model: Any) -> str:
    """The graph is transformers' own BERT: a model class of the folder's own code (auto_map) may differ."""
    cls = type(model)
    if cls.__module__.startswith("transformers.models.bert.") and cls.__name__ in _HEADS:
        return ""
    return f"the loaded class is {cls.__module__}.{cls.__name__}, not transformers' own BERT"
