"""BERT classifiers on ONNX Runtime inside transformers' own pipelines.

The text- and token-classification pipelines keep doing what they do well (tokenization, offsets, entity
aggregation, label mapping, `function_to_apply`); only their forward pass changes. The encoder runs as the ONNX
graph inferd builds from the verified safetensors (`_bert_onnx.BertSession`, the runtime of the default MiniLM),
and the small heads (pooler + classifier, or the per-token classifier) run in numpy.

Why: on 2 cores torch's intra-op threads cannot be given both cores without spinning against the event loop,
so the torch path runs one thread; ONNX Runtime's non-spinning threads use both (bench/classification.py and
docs/benchmarks.md have the figures). Chosen by the entry's `options["runtime"]`: "auto" (default) uses ONNX
Runtime when the model is a plain BERT classifier and onnxruntime is installed, else torch; "onnxruntime"
requires it; "torch" keeps torch. Logits match torch's within ~1e-5.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ...catalogue import ModelEntry

# Architecture -> the head run in numpy on the encoder's last hidden state.
_HEADS = {
    "BertForSequenceClassification": "sequence",
    "BertForTokenClassification": "token",
}


def accelerate(pipe: Any, entry: ModelEntry, path: str) -> int:
    """Swap the pipeline's forward pass for ONNX Runtime when the entry allows it and the model fits.

    Returns the bytes the ONNX session holds (0: the pipeline stays on torch)."""
    runtime = str(entry.options.get("runtime", "auto"))
    if runtime == "torch":
        return 0
    if runtime not in ("auto", "onnxruntime"):
        raise ValueError(f"Model {entry.model_id}: unknown runtime {runtime!r} (auto, onnxruntime or torch).")
    why_not = _unsupported(path) or _not_plain_bert(pipe.model)
    if why_not:
        if runtime == "onnxruntime":
            raise ValueError(f"Model {entry.model_id}: runtime 'onnxruntime' is not possible: {why_not}.")
        return 0
    from safetensors.numpy import load_file

    from .._bert_onnx import BertSession
    from ..weights import check_finite_weights

    folder = Path(path)
    config = json.loads((folder / "config.json").read_text())
    weights = load_file(str(folder / "model.safetensors"))
    check_finite_weights(weights.items(), f"Model {entry.model_id}")
    threads, fuse = int(entry.options.get("threads", 0)), bool(entry.options.get("fused_ops", False))
    session = BertSession(weights, config, threads, fuse=fuse)
    kind = _HEADS[config["architectures"][0]]
    pipe.model = OrtForward(pipe.model, session, _head(kind, weights))
    return session.nbytes


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


def _head(kind: str, weights: Mapping[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    classifier_w, classifier_b = weights["classifier.weight"].T.copy(), weights["classifier.bias"]
    if kind == "token":
        return lambda hidden: hidden @ classifier_w + classifier_b
    pooler_w, pooler_b = weights["bert.pooler.dense.weight"].T.copy(), weights["bert.pooler.dense.bias"]

    def sequence(hidden: np.ndarray) -> np.ndarray:
        pooled = np.tanh(hidden[:, 0] @ pooler_w + pooler_b)  # BertPooler: the [CLS] vector, dense, tanh
        return pooled @ classifier_w + classifier_b

    return sequence


class OrtForward:
    """Stands in for the pipeline's torch model: calls run on ONNX Runtime, everything else (config, device,
    forward's signature, parameters) is the torch model's."""

    def __init__(self, model: Any, session: Any, head: Callable[[np.ndarray], np.ndarray]) -> None:
        self._model, self._session, self._head = model, session, head

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(
        self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None, **kwargs: Any
    ) -> Any:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is not None and bool(token_type_ids.any()):
            # Sentence pairs: the graph assumes segment 0 everywhere, so torch answers these.
            return self._model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs
            )
        hidden = self._session.hidden(input_ids.numpy(), attention_mask.numpy())
        return {"logits": torch.from_numpy(np.ascontiguousarray(self._head(hidden), dtype=np.float32))}
