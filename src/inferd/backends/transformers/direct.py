"""Text and token classification on ONNX Runtime without the transformers pipeline's per-item Python.

A pipeline tokenizes, collates (a torch DataLoader), runs and postprocesses one text at a time; beside a small
model's forward that was most of inferd's CPU per request (docs/benchmarks.md). Here a batch is tokenized in
one call, runs as length-sorted forwards (`ort_bert.OrtClassifier`), and its logits become answers with numpy.

The answers are the pipeline's own (tests/backends/test_transformers_fidelity.py compares them over every
parameter the routes accept): the same tokenizer settings, score functions, label order and ties, entity
grouping. Token aggregation "first", "average" and "max" (word-level, rarely asked) keep the pipeline's own
postprocess, fed from the batched forward: it reads sub-word flags and word boundaries that are not worth a
second implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..base import InputError
from .ort_bert import OrtClassifier

# The pipeline's own default for `ignore_labels`.
_IGNORED = ("O",)


def classify_texts(
    pipe: Any, model: OrtClassifier, texts: Sequence[str], params: Mapping[str, Any]
) -> list[list[dict[str, Any]]]:
    """Per text: [{label, score}] best first (equal scores in label order), `top_k` of them when given."""
    config = pipe.model.config
    encoded = pipe.tokenizer(list(texts), padding=True, padding_side="right", return_tensors="np")
    # Not truncated, as the pipeline does not: a text past the model's positions is refused (model.logits).
    logits = model.logits(encoded["input_ids"], encoded["attention_mask"])
    scores = _score(logits, _function(config, params.get("function_to_apply")))
    order = np.argsort(-scores, axis=1, kind="stable")[:, : params.get("top_k") or None]
    best = np.take_along_axis(scores, order, axis=1).tolist()
    names = [config.id2label[i] for i in range(scores.shape[1])]
    return [
        [{"label": names[i], "score": s} for i, s in zip(row, row_scores, strict=True)]
        for row, row_scores in zip(order.tolist(), best, strict=True)
    ]


def _function(config: Any, requested: str | None) -> str:
    """TextClassificationPipeline.postprocess's choice when the request names none."""
    if requested:
        return requested
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    if config.problem_type == "single_label_classification" or config.num_labels > 1:
        return "softmax"
    chosen = getattr(config, "function_to_apply", "none")
    return str(getattr(chosen, "value", chosen)).lower()


def _score(logits: np.ndarray, function: str) -> np.ndarray:
    """The pipeline's sigmoid and softmax (transformers.pipelines.text_classification), on every row at once."""
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    if function == "softmax":
        return _softmax(logits)
    if function == "none":
        return logits
    raise InputError(f"Unknown function_to_apply {function!r} (sigmoid, softmax or none).")


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def find_entities(
    pipe: Any, model: OrtClassifier, texts: Sequence[str], params: Mapping[str, Any]
) -> list[list[dict[str, Any]]]:
    """Per text: the entities TokenClassificationPipeline finds with the same parameters."""
    kwargs = {k: params[k] for k in ("ignore_labels", "stride") if params.get(k) is not None}
    kwargs["aggregation_strategy"] = params.get("aggregation_strategy") or "simple"
    # The pipeline's own parameter checks (stride with "none", stride past the model's length) and settings.
    preprocess, _, postprocess = pipe._sanitize_parameters(**kwargs)
    strategy = postprocess["aggregation_strategy"].value
    tokenizer = pipe.tokenizer
    encoded = tokenizer(
        list(texts),
        return_tensors="np",
        truncation=bool(tokenizer.model_max_length and tokenizer.model_max_length > 0),
        return_special_tokens_mask=True,
        return_offsets_mapping=True,
        **{"padding": True, "padding_side": "right", **preprocess.get("tokenizer_params", {})},
    )
    owners = encoded.get("overflow_to_sample_mapping")
    owners = np.arange(len(texts)) if owners is None else np.asarray(owners)
    logits = model.logits(encoded["input_ids"], encoded["attention_mask"])
    lengths = encoded["attention_mask"].sum(axis=1).tolist()
    # Per chunk, its tokens without the padding: (ids, offsets, special tokens mask, logits).
    chunks: list[list[tuple[np.ndarray, ...]]] = [[] for _ in texts]
    for row, (owner, n) in enumerate(zip(owners.tolist(), lengths, strict=True)):
        fields = ("input_ids", "offset_mapping", "special_tokens_mask")
        chunks[owner].append((*(encoded[f][row, :n] for f in fields), logits[row, :n]))
    if strategy not in ("none", "simple"):
        return [
            _pipeline_postprocess(pipe, c, text, postprocess) for c, text in zip(chunks, texts, strict=True)
        ]
    ignored = set(postprocess.get("ignore_labels", _IGNORED))
    results = []
    for text_chunks, text in zip(chunks, texts, strict=True):
        found = []
        for ids, offsets, special, chunk_logits in text_chunks:
            tokens = _tokens(pipe, text, ids, offsets, special, _softmax(chunk_logits))
            entities = tokens if strategy == "none" else _group(pipe.tokenizer, tokens)
            found += [e for e in entities if e.get("entity", e.get("entity_group")) not in ignored]
        results.append(pipe.aggregate_overlapping_entities(found) if len(text_chunks) > 1 else found)
    return results


def _tokens(
    pipe: Any, text: str, ids: np.ndarray, offsets: np.ndarray, special: np.ndarray, scores: np.ndarray
) -> list[dict[str, Any]]:
    """One chunk's tokens as aggregation "none" gives them: {entity, score, index, word, start, end}."""
    keep = np.flatnonzero(special == 0)
    best = scores[keep].argmax(axis=-1)
    best_scores = scores[keep, best].tolist()
    kept_ids = ids[keep].tolist()
    words = pipe.tokenizer.convert_ids_to_tokens(kept_ids)
    unknown = pipe.tokenizer.unk_token_id
    names = pipe.model.config.id2label
    out = []
    for index, label, score, token_id, word, (start, end) in zip(
        keep.tolist(), best.tolist(), best_scores, kept_ids, words, offsets[keep].tolist(), strict=True
    ):
        if token_id == unknown:  # "[UNK]" says nothing: show the text it stands for
            word = text[start:end]
        out.append(
            {"entity": names[label], "score": score, "index": index, "word": word, "start": start, "end": end}
        )
    return out


def _tag(label: str) -> tuple[str, str]:
    """("B" or "I", entity type) as TokenClassificationPipeline.get_tag reads a label."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _group(tokenizer: Any, tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregation "simple": adjacent tokens of one entity type (a B- starts a new one) become one entity,
    scored by the mean of their scores computed as the pipeline does (float32 sum, float64 division)."""
    groups: list[list[dict[str, Any]]] = []
    for token in tokens:
        bi, tag = _tag(token["entity"])
        if groups and bi != "B" and tag == _tag(groups[-1][-1]["entity"])[1]:
            groups[-1].append(token)
        else:
            groups.append([token])
    if not groups:
        return []
    flat = np.array([t["score"] for g in groups for t in g], np.float32)
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
    sums = np.add.reduceat(flat, starts)
    out = []
    for group, total in zip(groups, sums.tolist(), strict=True):
        out.append(
            {
                "entity_group": group[0]["entity"].split("-", 1)[-1],
                "score": float(np.float32(total / len(group))),
                "word": tokenizer.convert_tokens_to_string([t["word"] for t in group]),
                "start": group[0]["start"],
                "end": group[-1]["end"],
            }
        )
    return out


def _pipeline_postprocess(
    pipe: Any, chunks: list[tuple[np.ndarray, ...]], text: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """TokenClassificationPipeline.postprocess on one text's chunks, each shaped as its `_forward` returns
    it: a batch of one, as torch tensors."""
    import torch

    from ._common import plain

    outputs = []
    for n, (ids, offsets, special, logits) in enumerate(chunks):
        outputs.append(
            {
                "logits": torch.from_numpy(logits[None]),
                "input_ids": torch.from_numpy(ids[None]),
                "offset_mapping": torch.from_numpy(offsets[None]),
                "special_tokens_mask": torch.from_numpy(special[None]),
                "sentence": text if n == 0 else None,
                "is_last": n == len(chunks) - 1,
            }
        )
    return plain(pipe.postprocess(outputs, **params))
