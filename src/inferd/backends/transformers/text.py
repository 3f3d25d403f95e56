"""Text tasks on transformers pipelines: classification, entities, extractive QA, fill-mask, zero-shot, tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..base import InputError
from ._common import Runner, as_input_error, make_pipeline, per_input, pick, plain, text_limit
from .direct import classify_texts, find_entities
from .ort_bert import ort_classifier

if TYPE_CHECKING:
    from ...catalogue import ModelEntry


class TextClassification(Runner):
    """Per input: [{label, score}] best first, every label unless `top_k` (the server adds the outer list)."""

    honoured = frozenset({"top_k", "function_to_apply"})

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline("text-classification", entry, path)
        self.max_input_tokens = text_limit(self.pipe.tokenizer)
        self.ort = ort_classifier(self.pipe, entry, path)  # ONNX Runtime when it can (ort_bert.py)
        self.extra_bytes = self.ort.nbytes if self.ort else 0

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        if self.ort:  # the whole batch at once, without the pipeline (direct.py)
            ort = self.ort
            return as_input_error(lambda: classify_texts(self.pipe, ort, [str(t) for t in inputs], params))
        kwargs = pick(params, "function_to_apply")
        out = as_input_error(lambda: self.pipe(list(inputs), batch_size=len(inputs), top_k=None, **kwargs))
        results = []
        for labels in per_input(out, len(inputs)):
            labels = sorted(plain(labels), key=lambda d: -d["score"])
            results.append(labels[: params["top_k"]] if params.get("top_k") else labels)
        return results


class TokenClassification(Runner):
    """Per input: [{entity_group, score, word, start, end}] ("entity" and "index" with aggregation "none")."""

    honoured = frozenset({"aggregation_strategy", "ignore_labels", "stride"})

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline("token-classification", entry, path)
        self.max_input_tokens = text_limit(self.pipe.tokenizer)
        self.ort = ort_classifier(self.pipe, entry, path)  # ONNX Runtime when it can (ort_bert.py)
        self.extra_bytes = self.ort.nbytes if self.ort else 0

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        if self.ort:  # the whole batch at once, without the pipeline (direct.py)
            ort = self.ort
            return as_input_error(lambda: find_entities(self.pipe, ort, [str(t) for t in inputs], params))
        kwargs = pick(params, "ignore_labels", "stride")
        kwargs["aggregation_strategy"] = params.get("aggregation_strategy") or "simple"
        out = as_input_error(lambda: self.pipe(list(inputs), batch_size=len(inputs), **kwargs))
        return [plain(entities) for entities in per_input(out, len(inputs))]


class QuestionAnswering(Runner):
    """Per input ({question, context}): {answer, score, start, end}; a list of those when top_k > 1."""

    honoured = frozenset(
        {
            "top_k",
            "doc_stride",
            "max_answer_len",
            "max_seq_len",
            "max_question_len",
            "handle_impossible_answer",
            "align_to_words",
        }
    )

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline("question-answering", entry, path)

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        kwargs = pick(params, *self.honoured)
        questions = [str(i["question"]) for i in inputs]
        contexts = [str(i["context"]) for i in inputs]
        if not all(q.strip() and c.strip() for q, c in zip(questions, contexts, strict=True)):
            raise InputError("`question` and `context` must not be empty.")
        out = as_input_error(
            lambda: self.pipe(question=questions, context=contexts, batch_size=len(inputs), **kwargs)
        )
        results = [out] if len(inputs) == 1 else per_input(out, len(inputs))
        if (params.get("top_k") or 1) > 1:  # the pipeline unwraps a single answer even then
            results = [r if isinstance(r, list) else [r] for r in results]
        return [plain(r) for r in results]


class FillMask(Runner):
    """Per input: [{sequence, score, token, token_str}] best first (a list of those per mask if several)."""

    honoured = frozenset({"top_k", "targets"})

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline("fill-mask", entry, path)
        self.max_input_tokens = text_limit(self.pipe.tokenizer)
        self.mask = self.pipe.tokenizer.mask_token

    def _masked(self, text: str) -> str:
        # Clients written for RoBERTa send "<mask>" to BERT models and the reverse; accept either.
        if self.mask not in text:
            for other in ("<mask>", "[MASK]"):
                text = text.replace(other, self.mask)
        if self.mask not in text:
            raise InputError(f"The input must contain the mask token `{self.mask}`.")
        return text

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        texts = [self._masked(str(t)) for t in inputs]
        kwargs = pick(params, "top_k", "targets")
        out = as_input_error(lambda: self.pipe(texts, batch_size=len(texts), **kwargs))
        if len(texts) == 1:
            out = [out]
        return [plain(r) for r in per_input(out, len(texts))]


class ZeroShotClassification(Runner):
    """Per input: [{label, score}] best first, one per candidate label."""

    honoured = frozenset({"candidate_labels", "hypothesis_template", "multi_label"})

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline("zero-shot-classification", entry, path)

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        labels = params.get("candidate_labels")
        if isinstance(labels, str):  # v0.21 clients join the labels with commas
            labels = [label.strip() for label in labels.split(",") if label.strip()]
        if not labels:
            raise InputError("Parameter `candidate_labels` is required (a list of at least one label).")
        kwargs = pick(params, "hypothesis_template", "multi_label")
        out = as_input_error(
            lambda: self.pipe(
                list(inputs), candidate_labels=list(labels), batch_size=len(inputs) * len(labels), **kwargs
            )
        )
        return [
            [
                {"label": label, "score": float(score)}
                for label, score in zip(r["labels"], r["scores"], strict=True)
            ]
            for r in per_input(out, len(inputs))
        ]


class TableQuestionAnswering(Runner):
    """Per input ({table, query}): {answer, coordinates: [[row, col]], cells: [str], aggregator}."""

    honoured = frozenset({"padding", "sequential", "truncation"})

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline("table-question-answering", entry, path)

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        import pandas as pd

        queries = []
        for item in inputs:
            table = item["table"]
            if not table or len({len(v) for v in table.values()}) != 1:
                raise InputError("`table` must have columns of equal, non-zero length.")
            frame = pd.DataFrame({str(k): [str(v) for v in vs] for k, vs in table.items()}, dtype=object)
            queries.append({"table": frame, "query": str(item["query"])})
        kwargs = pick(params, "padding", "sequential")
        if params.get("truncation") is not None:
            kwargs["truncation"] = "drop_rows_to_fit" if params["truncation"] else "do_not_truncate"
        out = as_input_error(lambda: self.pipe(queries, **kwargs))
        results = []
        for r in per_input(out, len(inputs)):
            r = plain(r)
            results.append(
                {
                    "answer": r["answer"],
                    "coordinates": r["coordinates"],
                    "cells": r["cells"],
                    "aggregator": r.get("aggregator", "NONE"),
                }
            )
        return results


class Summarization(Runner):
    """Per input: {summary_text} (the server wraps a single answer in a list)."""

    hf_task, key = "summarization", "summary_text"
    honoured = frozenset(
        {"clean_up_tokenization_spaces", "truncation", "generate_parameters", "min_length", "max_length"}
    )

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline(self.hf_task, entry, path)

    def _kwargs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        from ._common import generate_kwargs

        kwargs = {**generate_kwargs(params), **pick(params, "clean_up_tokenization_spaces", "truncation")}
        kwargs.update(pick(params, "min_length", "max_length"))
        return kwargs

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        kwargs = self._kwargs(params)
        out = as_input_error(lambda: self.pipe(list(inputs), batch_size=len(inputs), **kwargs))
        return [
            {self.key: r[0][self.key] if isinstance(r, list) else r[self.key]}
            for r in per_input(out, len(inputs))
        ]


class Translation(Summarization):
    """Per input: {translation_text}. src_lang/tgt_lang only for multilingual models (mBART, NLLB, M2M100)."""

    hf_task, key = "translation", "translation_text"
    honoured = frozenset(
        {"src_lang", "tgt_lang", "clean_up_tokenization_spaces", "truncation", "generate_parameters"}
    )

    def _kwargs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = super()._kwargs(params)
        langs = pick(params, "src_lang", "tgt_lang")
        if langs and not hasattr(self.pipe.tokenizer, "_build_translation_inputs"):
            raise InputError(
                f"This model translates one fixed language pair; it cannot take {sorted(langs)}."
            )
        return {**kwargs, **langs}
