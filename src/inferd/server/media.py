"""Base64 in, and the encoding of images and audio the server answers with.

Decoding what a client sends (with its size limits) is media_limits.py; the server never fetches a URL.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

import numpy as np
from PIL import Image

from ..tasks import Audio
from .errors import ServerError

_DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


def b64decode(value: Any, where: str) -> bytes:
    """Base64 (or a `data:` URL) from a JSON field, refusing URLs and anything that is not base64."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str) or not value.strip():
        raise ServerError(f"`{where}` must be a non-empty base64 string, got {type(value).__name__}.")
    text = value.strip()
    if text.lower().startswith(("http://", "https://", "ftp://", "file:")):
        raise ServerError(
            f"`{where}` is a URL and the server does not fetch URLs: send the content itself (raw bytes or base64)."
        )
    text = _DATA_URL.sub("", text, count=1)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:  # URL-safe alphabet, or missing padding
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise ServerError(f"`{where}` is not valid base64.") from None


IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP"}
AUDIO_FORMATS = {"audio/flac": "FLAC", "audio/x-flac": "FLAC", "audio/wav": "WAV", "audio/x-wav": "WAV"}
_CANONICAL = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "FLAC": "audio/flac",
    "WAV": "audio/wav",
}


def negotiate(accept: str | None, formats: dict[str, str], default: str) -> tuple[str, str]:
    """(PIL/soundfile format, content type) for the first `Accept` type we can write, else `default`."""
    for part in (accept or "").split(","):
        mime = part.split(";")[0].strip().lower()
        if mime in formats:
            fmt = formats[mime]
            return fmt, _CANONICAL[fmt]
    return formats[default], default


def encode_image(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.save(out, format=fmt)
    return out.getvalue()


def encode_audio(audio: Audio, fmt: str = "FLAC") -> bytes:
    import soundfile

    out = io.BytesIO()
    array = np.clip(np.asarray(audio.array, dtype=np.float32), -1.0, 1.0)
    soundfile.write(out, array, int(audio.sampling_rate), format=fmt, subtype="PCM_16")
    return out.getvalue()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
