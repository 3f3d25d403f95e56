"""Backend results -> the HF Inference API's answer shapes (servers.md §1.5 column b), media encoded per Accept.

A backend returns one result per input (see inferd.backends.base); this module adds the outer list some tasks
answer with, turns numpy into lists, PIL masks into base64 PNG, and images/audio into bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tasks import Audio
from . import media
from .errors import ServerError

# Tasks whose single answer is a one-element list around the result object.
_LISTED = {"summarization", "translation", "image-to-text", "text2text-generation", "text-generation"}


@dataclass
class Encoded:
    """What to send: JSON `content`, or raw `data` with its `media_type`."""

    content: Any = None
    data: bytes | None = None
    media_type: str = "application/json"


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _zero_shot(result: Any) -> Any:
    """The old transformers shape {sequence, labels, scores} -> the list of {label, score} clients parse."""
    if isinstance(result, dict) and "labels" in result and "scores" in result:
        return [
            {"label": label, "score": score}
            for label, score in zip(result["labels"], result["scores"], strict=False)
        ]
    return result


def _segments(result: Any) -> Any:
    out = []
    for segment in result:
        mask = segment.get("mask")
        if mask is not None and not isinstance(mask, str):
            if isinstance(mask, np.ndarray):
                from PIL import Image

                mask = Image.fromarray((mask > 0).astype(np.uint8) * 255 if mask.dtype == bool else mask)
            mask = media.b64encode(media.encode_image(mask, "PNG"))
        out.append({**segment, "mask": mask})
    return out


def _audio_blobs(result: Any) -> Any:
    out = []
    for item in result:
        blob = item.get("blob")
        if isinstance(blob, Audio):
            blob = media.b64encode(media.encode_audio(blob, "FLAC"))
            item = {**item, "content-type": "audio/flac"}
        elif isinstance(blob, (bytes, bytearray)):
            blob = media.b64encode(bytes(blob))
        out.append({**item, "blob": blob})
    return out


def _legacy_zero_shot(result: Any) -> Any:
    """The {sequence, labels, scores} object huggingface_hub < 1.0 indexes (`output["labels"]`)."""
    items = _zero_shot(result)
    if not isinstance(items, list):
        return result
    return {"sequence": "", "labels": [i["label"] for i in items], "scores": [i["score"] for i in items]}


def _one(task: str, result: Any, legacy: bool = False) -> Any:
    """The per-input answer in wire shape (without the single-input outer list)."""
    if task == "zero-shot-classification" and legacy:
        result = _legacy_zero_shot(result)
    elif task in ("zero-shot-classification", "zero-shot-image-classification"):
        result = _zero_shot(result)
    elif task == "image-segmentation":
        result = _segments(result)
    elif task == "audio-to-audio":
        result = _audio_blobs(result)
    elif task == "automatic-speech-recognition" and isinstance(result, str):
        result = {"text": result}
    return _plain(result)


def _binary(task: str, result: Any, accept: str | None) -> Encoded:
    if isinstance(result, (bytes, bytearray)):
        return Encoded(
            data=bytes(result), media_type="audio/flac" if task == "text-to-speech" else "image/png"
        )
    if isinstance(result, Audio):
        fmt, ctype = media.negotiate(accept, media.AUDIO_FORMATS, "audio/flac")
        return Encoded(data=media.encode_audio(result, fmt), media_type=ctype)
    if hasattr(result, "save"):  # PIL.Image
        fmt, ctype = media.negotiate(accept, media.IMAGE_FORMATS, "image/png")
        return Encoded(data=media.encode_image(result, fmt), media_type=ctype)
    raise ServerError(f"The model returned {type(result).__name__} for task '{task}'.", "internal")


def encode(
    task: str, results: list[Any], batched: bool, accept: str | None, *, legacy_zero_shot: bool = False
) -> Encoded:
    """The answer for a request; CPU work (PNG/FLAC encoding): call from a worker thread.

    `legacy_zero_shot`: answer zero-shot-classification as {sequence, labels, scores} (see `legacy_client`).
    """
    if task in ("text-to-image", "image-to-image", "text-to-speech"):
        return _binary(task, results[0], accept)
    items = [_one(task, r, legacy_zero_shot) for r in results]
    if batched:
        return Encoded(items)
    item = items[0]
    if task == "text-classification" and (not item or isinstance(item[0], dict)):
        return Encoded([item])
    if task in _LISTED and isinstance(item, dict):
        return Encoded([item])
    return Encoded(item)


_HF_HUB = re.compile(r"\bhf_hub/(\d+)\.")


def legacy_client(user_agent: str | None) -> bool:
    """huggingface_hub before 1.0 parses zero-shot-classification as a dict (v0.21 to 0.36 do `output["labels"]`);
    1.x fixed that to the list every other client reads (huggingface_hub#3557). Told apart by its User-Agent."""
    match = _HF_HUB.search(user_agent or "")
    return match is not None and match.group(1) == "0"
