"""Image tasks on transformers pipelines. Inputs are PIL images (RGB); masks are returned as PIL "L" images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._image import parse_target_size
from ..base import InputError
from ._common import Runner, as_input_error, generate_kwargs, make_pipeline, per_input, pick, plain

if TYPE_CHECKING:
    from ...catalogue import ModelEntry


def _labels(results: Any) -> list[dict[str, Any]]:
    return sorted(
        ({"label": str(r["label"]), "score": float(r["score"])} for r in results), key=lambda d: -d["score"]
    )


class _ImagePipeline(Runner):
    hf_task = ""

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline(self.hf_task, entry, path)

    def _call(self, inputs: Sequence[Any], **kwargs: Any) -> list[Any]:
        out = as_input_error(lambda: self.pipe(list(inputs), batch_size=len(inputs), **kwargs))
        return per_input(out, len(inputs))


class ImageClassification(_ImagePipeline):
    """Per input: [{label, score}] best first (5 labels unless top_k)."""

    hf_task = "image-classification"
    honoured = frozenset({"top_k", "function_to_apply"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        kwargs = pick(params, "top_k", "function_to_apply")
        return [_labels(r) for r in self._call(inputs, **kwargs)]


class ObjectDetection(_ImagePipeline):
    """Per input: [{label, score, box: {xmin, ymin, xmax, ymax}}] with integer pixel boxes."""

    hf_task = "object-detection"
    honoured = frozenset({"threshold"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        results = self._call(inputs, **pick(params, "threshold"))
        return [
            [
                {
                    "label": str(d["label"]),
                    "score": float(d["score"]),
                    "box": {k: int(round(float(v))) for k, v in d["box"].items()},
                }
                for d in detections
            ]
            for detections in results
        ]


class ImageSegmentation(_ImagePipeline):
    """Per input: [{label, score, mask}] with `mask` a PIL image (mode "L", 255 inside); score None if semantic."""

    hf_task = "image-segmentation"
    honoured = frozenset({"threshold", "mask_threshold", "overlap_mask_area_threshold", "subtask"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        kwargs = pick(params, "threshold", "mask_threshold", "overlap_mask_area_threshold", "subtask")
        results = self._call(inputs, **kwargs)
        return [
            [
                {
                    "label": str(s["label"]),
                    "score": None if s.get("score") is None else float(s["score"]),
                    "mask": s["mask"].convert("L"),
                }
                for s in segments
            ]
            for segments in results
        ]


class ImageToText(_ImagePipeline):
    """Per input: {generated_text} (the server wraps a single answer in a list)."""

    hf_task = "image-to-text"
    honoured = frozenset({"max_new_tokens", "generate_parameters"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        kwargs: dict[str, Any] = {"generate_kwargs": generate_kwargs(params)}
        kwargs.update(pick(params, "max_new_tokens"))
        results = self._call(inputs, **kwargs)
        return [{"generated_text": (r[0] if isinstance(r, list) else r)["generated_text"]} for r in results]


class ZeroShotImageClassification(_ImagePipeline):
    """Per input: [{label, score}] best first, one per candidate label."""

    hf_task = "zero-shot-image-classification"
    honoured = frozenset({"candidate_labels", "hypothesis_template"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        labels = params.get("candidate_labels")
        if isinstance(labels, str):
            labels = [label.strip() for label in labels.split(",") if label.strip()]
        if not labels:
            raise InputError("Parameter `candidate_labels` is required (a list of at least one label).")
        kwargs = pick(params, "hypothesis_template")
        return [_labels(r) for r in self._call(inputs, candidate_labels=list(labels), **kwargs)]


def _questions(inputs: Sequence[Any], **extra: Any) -> list[dict[str, Any]]:
    items = []
    for item in inputs:
        question = str(item.get("question") or "").strip()
        if not question:
            raise InputError("`question` must not be empty.")
        items.append({"image": item["image"], "question": question, **extra})
    return items


class VisualQuestionAnswering(_ImagePipeline):
    """Per input ({image, question}): [{answer, score}] best first (5 unless top_k)."""

    hf_task = "visual-question-answering"
    honoured = frozenset({"top_k"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        results = self._call(_questions(inputs), **pick(params, "top_k"))
        return [
            sorted(
                ({"answer": str(a["answer"]), "score": float(a["score"])} for a in answers),
                key=lambda d: -d["score"],
            )
            for answers in results
        ]


class DocumentQuestionAnswering(_ImagePipeline):
    """Per input ({image, question}): [{answer, score, start, end}] (start/end index the words).

    The words come from the `word_boxes` parameter ([[word, [x0, y0, x1, y1]], ...], boxes scaled to 0-1000):
    inferd runs no OCR (transformers would need Tesseract).
    """

    hf_task = "document-question-answering"
    honoured = frozenset(
        {
            "top_k",
            "doc_stride",
            "max_answer_len",
            "max_seq_len",
            "max_question_len",
            "handle_impossible_answer",
        }
        | {"word_boxes"}
    )

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        boxes = params.get("word_boxes")
        if not boxes:
            raise InputError(
                "document-question-answering needs the `word_boxes` parameter ([[word, [x0, y0, x1, y1]], ...]): "
                "this server runs no OCR."
            )
        try:
            word_boxes = [(str(w), [int(round(float(c))) for c in box]) for w, box in boxes]
        except (TypeError, ValueError):
            raise InputError("`word_boxes` must be a list of [word, [x0, y0, x1, y1]].") from None
        kwargs = pick(params, *(self.honoured - {"word_boxes"}))
        results = self._call(_questions(inputs, word_boxes=word_boxes), **kwargs)
        return [plain(r if isinstance(r, list) else [r]) for r in results]


class ImageToImage(_ImagePipeline):
    """Per input: a PIL image (super-resolution models such as Swin2SR: the input `upscale` times larger).

    The pipeline stacks a batch into one tensor, so a batch runs one call per input size. Swin2SR's processor
    pads the right and bottom edges up to its window; that border is cropped off again, so the output is
    exactly the input scaled. `target_size` resizes the result."""

    hf_task = "image-to-image"
    honoured = frozenset({"target_size"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        size = parse_target_size(params.get("target_size"))
        scale = int(getattr(self.pipe.model.config, "upscale", 1) or 1)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(inputs):
            by_size.setdefault(image.size, []).append(i)
        results: list[Any] = [None] * len(inputs)
        for (width, height), indices in by_size.items():
            outputs = self._call([inputs[i] for i in indices])
            for i, image in zip(indices, outputs, strict=True):
                image = image.crop((0, 0, min(image.width, width * scale), min(image.height, height * scale)))
                results[i] = image.resize(size) if size is not None else image
        return results
