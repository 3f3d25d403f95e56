"""Embeddings without a pipeline: the padded batch is cut back per input, so each text gets its own length.

A plain transformers folder gives token vectors [1, seq, hidden] per text, exactly what the transformers
feature-extraction pipeline (and so the hosted API) returns for one string. A sentence-transformers folder (modules.json + 1_Pooling/config.json) gives one pooled vector
per text, normalised when the folder has a Normalize module, and may define prompts (`prompt_name`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..base import InputError
from ._common import Runner, load_kwargs, read_json

if TYPE_CHECKING:
    from ...catalogue import ModelEntry


class Embedder:
    """The model, its tokenizer and its sentence-transformers settings, loaded once per folder."""

    def __init__(self, entry: ModelEntry, path: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        kwargs = load_kwargs(entry)
        self.tokenizer = AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=entry.trust_remote_code
        )
        self.tokenizer.padding_side = "right"
        self.model = AutoModel.from_pretrained(path, **kwargs).eval()
        modules = read_json(path, "modules.json") if (Path(path) / "modules.json").exists() else None
        self.sentence_transformers = modules is not None
        module_list: list[Any] = modules if isinstance(modules, list) else []
        types = [str(m.get("type", "")) for m in module_list if isinstance(m, dict)]
        self.normalize = any(t.endswith("Normalize") for t in types)
        pooling = next(
            (m.get("path", "") for m in module_list if str(m.get("type", "")).endswith("Pooling")),
            "1_Pooling",
        )
        pool_config = read_json(str(Path(path) / pooling), "config.json")
        modes = [k for k, v in pool_config.items() if k.startswith("pooling_mode_") and v]
        self.pooling = modes[0].removeprefix("pooling_mode_") if modes else "mean_tokens"
        st_config = read_json(path, "config_sentence_transformers.json")
        self.prompts: dict[str, str] = (
            dict(st_config.get("prompts") or {}) if isinstance(st_config, dict) else {}
        )
        limits = [
            getattr(self.tokenizer, "model_max_length", None),
            getattr(self.model.config, "max_position_embeddings", None),
            dict(read_json(path, "sentence_bert_config.json") or {}).get("max_seq_length"),
        ]
        self.max_tokens = int(min(x for x in limits if isinstance(x, (int, float)) and x > 0) or 512)

    def tokens(self, texts: Sequence[str], truncate: bool, direction: str) -> tuple[list[np.ndarray], Any]:
        """Token vectors per text (padding removed) and the batch's attention mask."""
        if any(not isinstance(t, str) for t in texts):
            raise InputError("Inputs must be strings.")
        self.tokenizer.truncation_side = direction.lower()
        enc = self.tokenizer(
            list(texts), padding=True, truncation=truncate, max_length=self.max_tokens, return_tensors="pt"
        )
        if enc["input_ids"].shape[1] > self.max_tokens:
            raise InputError(
                f"Input is longer than the model's {self.max_tokens} tokens; send `truncate: true` to cut it."
            )
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"]
        lengths = mask.sum(dim=1).tolist()
        return [hidden[i, : int(n)].numpy() for i, n in enumerate(lengths)], (hidden, mask)

    def pooled(self, texts: Sequence[str], truncate: bool = True, direction: str = "right") -> np.ndarray:
        _, (hidden, mask) = self.tokens(texts, truncate, direction)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls_token":
            vectors = hidden[:, 0]
        elif self.pooling == "max_tokens":
            vectors = hidden.masked_fill(m == 0, -1e9).max(dim=1).values
        elif self.pooling == "lasttoken":
            vectors = hidden[torch.arange(hidden.shape[0]), mask.sum(dim=1) - 1]
        else:
            vectors = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        return vectors.numpy().astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def _embedder(entry: ModelEntry, path: str, shared: dict[str, Any]) -> Embedder:
    if "embedder" not in shared:
        shared["embedder"] = Embedder(entry, path)
    embedder: Embedder = shared["embedder"]
    return embedder


class FeatureExtraction(Runner):
    """Per input: float32 [1, seq, hidden] (plain model) or [hidden] (sentence-transformers folder)."""

    honoured = frozenset({"normalize", "prompt_name", "truncate", "truncation_direction", "dimensions"})
    shares_model = True

    def __init__(self, entry: ModelEntry, path: str, shared: dict[str, Any]) -> None:
        self.embedder = _embedder(entry, path, shared)
        self.max_input_tokens = self.embedder.max_tokens

    def modules(self) -> list[torch.nn.Module]:
        return [self.embedder.model]

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        e = self.embedder
        texts = [str(t) for t in inputs]
        if params.get("prompt_name"):
            prompt = e.prompts.get(params["prompt_name"])
            if prompt is None:
                known = sorted(e.prompts) or "none"
                raise InputError(
                    f"Unknown prompt_name {params['prompt_name']!r}; this model's prompts: {known}."
                )
            texts = [prompt + t for t in texts]
        truncate = params.get("truncate", True)
        direction = params.get("truncation_direction") or "right"
        normalize = params.get("normalize", e.normalize if e.sentence_transformers else False)
        vectors: list[np.ndarray]
        if e.sentence_transformers:
            vectors = list(e.pooled(texts, truncate, direction))
        else:
            tokens, _ = e.tokens(texts, truncate, direction)
            vectors = [t[None] for t in tokens]
        dims = params.get("dimensions")
        out = []
        for v in vectors:
            if dims:
                v = v[..., :dims]
            out.append(_unit(v) if normalize else v.astype(np.float32))
        return out


class SentenceSimilarity(Runner):
    """Per input ({source_sentence, sentences}): [cosine(source, s) for s in sentences]."""

    shares_model = True

    def __init__(self, entry: ModelEntry, path: str, shared: dict[str, Any]) -> None:
        self.embedder = _embedder(entry, path, shared)

    def modules(self) -> list[torch.nn.Module]:
        return [self.embedder.model]

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        texts: list[str] = []
        spans = []
        for item in inputs:
            sentences = [str(s) for s in item["sentences"]]
            if not sentences:
                raise InputError("`sentences` must not be empty.")
            spans.append((len(texts), len(sentences)))
            texts += [str(item["source_sentence"]), *sentences]
        vectors = _unit(self.embedder.pooled(texts))
        results = []
        for start, n in spans:
            scores = vectors[start + 1 : start + 1 + n] @ vectors[start]
            results.append([float(s) if math.isfinite(s) else 0.0 for s in scores])
        return results
