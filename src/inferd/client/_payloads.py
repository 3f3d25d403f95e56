"""Request bodies and response parsing per task (spec §5): pure functions the task methods call."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from ._common import InvalidResponseError
from ._inputs import b64encode, pil_image


def params(**kwargs: Any) -> dict[str, Any]:
    """The parameters a user set (None means "server default" and is not sent)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def with_parameters(body: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    if parameters:
        body["parameters"] = parameters
    return body


def inputs_body(inputs: Any, parameters: dict[str, Any], *, top_level: bool = False) -> dict[str, Any]:
    """`{"inputs": ..., "parameters": {...}}`; `parameters` is left out when empty, as v0.21 did."""
    if top_level:
        return {"inputs": inputs, **parameters}
    return with_parameters({"inputs": inputs}, parameters)


def binary_body(data: bytes, parameters: dict[str, Any]) -> bytes | dict[str, Any]:
    """Raw bytes when there are no parameters, else `{"inputs": base64, "parameters": {...}}` (spec §11)."""
    return {"inputs": b64encode(data), "parameters": parameters} if parameters else data


def join_labels(labels: Sequence[str]) -> str | list[str]:
    """v0.21 sends candidate labels comma-joined; a label with a comma in it forces the list form."""
    if len(labels) < 2:
        raise ValueError("You must specify at least 2 classes to compare.")
    labels = list(labels)
    return labels if any("," in label for label in labels) else ",".join(labels)


def check_translation_langs(src_lang: str | None, tgt_lang: str | None) -> None:
    if src_lang is not None and tgt_lang is None:
        raise ValueError("You cannot specify `src_lang` without specifying `tgt_lang`.")
    if src_lang is None and tgt_lang is not None:
        raise ValueError("You cannot specify `tgt_lang` without specifying `src_lang`.")


# ---- parsing ------------------------------------------------------------------------------------


def expect_list(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise ValueError(f"Server output must be a list. Got {type(body).__name__}: {str(body)[:200]}.")
    return body


def first(body: Any) -> Any:
    """Many pipelines answer a one-element list for one input."""
    return body[0] if isinstance(body, list) and body else body


def field(body: Any, key: str) -> Any:
    item = first(body)
    if not isinstance(item, dict) or key not in item:
        raise InvalidResponseError(f"Expected a `{key}` field in the server output, got {str(body)[:200]}.")
    return item[key]


def classification(body: Any) -> list[Any]:
    """text-classification answers `[[{label, score}, ...]]` for one text."""
    body = expect_list(body)
    return body[0] if body and isinstance(body[0], list) else body


def audio_to_audio(body: Any) -> list[Any]:
    items = expect_list(body)
    for item in items:
        item["blob"] = base64.b64decode(item["blob"])
    return items


def speech_recognition(body: Any, *, full: bool) -> Any:
    if full:
        return body
    return field(body, "text")


def segmentation(body: Any) -> list[Any]:
    items = expect_list(body)
    for item in items:
        item["mask"] = pil_image(base64.b64decode(item["mask"]))
    return items


def zero_shot(body: Any) -> list[Any]:
    """`{"sequence", "labels", "scores"}` -> `[{"label", "score"}, ...]` in the server's order."""
    if isinstance(body, list):  # newer servers already answer the list form
        return body
    if not isinstance(body, dict) or "labels" not in body or "scores" not in body:
        raise InvalidResponseError(f"Unexpected zero-shot output: {str(body)[:200]}.")
    return [
        {"label": label, "score": score} for label, score in zip(body["labels"], body["scores"], strict=False)
    ]


def feature_extraction(body: Any) -> Any:
    import numpy as np

    return np.array(body, dtype="float32")
