"""The one decode step for images and audio a client sends, with the limits checked from the file's header.

    limits = MediaLimits(max_image_pixels=64_000_000, max_audio_seconds=600)
    image = decode_image(data, "inputs", limits)   # PIL.Image in RGB, or ServerError 400/413/422
    audio = decode_audio(data, "inputs", limits)   # mono float32 Audio at the file's own rate

Why the header: a 99-byte PNG can say it is 20000x1 and a 8 KB WAV that it plays at 1 Hz. Decoding them, and
above all resizing or resampling them for a model, took gigabytes (issue 10, rows 2, 3, 9, 10). Pillow's
`Image.open` and soundfile's `info` read only the header, so these checks cost microseconds and run before
any pixel or sample is decoded. A file that is too large answers 413, one of an unusable shape (aspect, sample
rate, channels) 422; both name the limit and the flag that sets it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..tasks import Audio
from .errors import ServerError, without_reprs

# Pillow's own bomb check runs inside Image.open and cannot name our limit: check_image_size replaces it.
Image.MAX_IMAGE_PIXELS = None

# Telephone audio is 8 kHz and studio masters 192 kHz; outside that a rate is a broken or hostile header (a WAV
# saying 1 Hz made a model resample 16,000 samples to 256 million). Fixed, not flags: no real file is outside.
MIN_AUDIO_RATE = 8_000
MAX_AUDIO_RATE = 192_000
# 7.1 surround; more channels only multiply the memory a decode takes before the mix down to mono.
MAX_AUDIO_CHANNELS = 8
_AUDIO_BLOCK = 1 << 16  # frames decoded at a time, mixed to mono as they come


@dataclass(frozen=True)
class MediaLimits:
    """Per-input limits on media (`inferd serve` flags of the same names, or `[server]` keys)."""

    max_image_pixels: int = 64_000_000  # width x height: about 190 MB once decoded to RGB
    max_image_side: int = 16_384  # pixels, either side (JPEG's own limit is 65,535)
    max_image_aspect: float = 100.0  # longer side / shorter side (a text line for OCR is about 50)
    max_audio_seconds: float = 600.0  # duration, from the header


def _too_large(message: str) -> ServerError:
    return ServerError(message, "payload_too_large")


def _bad_shape(message: str) -> ServerError:
    return ServerError(message, "validation")


def check_image_size(width: int, height: int, where: str, limits: MediaLimits) -> None:
    """413/422 for an image of `width` x `height` the limits do not allow."""
    if width < 1 or height < 1:
        raise _bad_shape(f"`{where}` is an image of {width}x{height} pixels, which holds no pixel.")
    if width * height > limits.max_image_pixels:
        raise _too_large(
            f"`{where}` is an image of {width}x{height} = {width * height} pixels; this server takes at most "
            f"{limits.max_image_pixels} (--max-image-pixels)."
        )
    if max(width, height) > limits.max_image_side:
        raise _too_large(
            f"`{where}` is an image of {width}x{height} pixels; this server takes at most "
            f"{limits.max_image_side} pixels a side (--max-image-side)."
        )
    aspect = max(width, height) / min(width, height)
    if aspect > limits.max_image_aspect:
        raise _bad_shape(
            f"`{where}` is an image of {width}x{height} pixels, an aspect ratio of {aspect:g}:1; this server "
            f"takes at most {limits.max_image_aspect:g}:1 (--max-image-aspect)."
        )


def decode_image(data: bytes, where: str, limits: MediaLimits) -> Image.Image:
    """The image in `data` as RGB, its size checked from the header before any pixel is decoded."""
    if not data:
        raise ServerError(f"`{where}` is empty: send an image.")
    unreadable = f"`{where}` is not an image this server can read (PNG, JPEG, WebP, ...)"
    try:
        image = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        # Pillow's message holds the repr of our BytesIO (`<_io.BytesIO object at 0x...>`): not for clients.
        raise ServerError(f"{unreadable}.") from None
    check_image_size(*image.size, where, limits)
    try:
        image.load()
        return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ServerError(f"{unreadable}: {_reason(exc)}.") from None


def decode_audio(data: bytes, where: str, limits: MediaLimits) -> Audio:
    """WAV, FLAC or OGG bytes -> mono float32 Audio at the file's own rate, its header checked first."""
    if not data:
        raise ServerError(f"`{where}` is empty: send audio (WAV, FLAC or OGG).")
    import soundfile

    unreadable = f"`{where}` is not audio this server can read (WAV, FLAC or OGG)"
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as file:
            check_audio_header(file.samplerate, file.channels, file.frames, where, limits)
            blocks = [
                b.mean(axis=1, dtype=np.float32)
                for b in file.blocks(_AUDIO_BLOCK, dtype="float32", always_2d=True)
            ]
    except ServerError:
        raise
    except (RuntimeError, ValueError, TypeError, soundfile.LibsndfileError) as exc:
        raise ServerError(f"{unreadable}: {_reason(exc)}.") from None
    array = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    if array.size == 0:
        raise ServerError(f"`{where}` holds no audio samples.")
    return Audio(array=np.ascontiguousarray(array, dtype=np.float32), sampling_rate=int(file.samplerate))


def check_audio_header(rate: int, channels: int, frames: int, where: str, limits: MediaLimits) -> None:
    """422 for a sample rate or channel count no real recording has, 413 for audio longer than the limit."""
    if not MIN_AUDIO_RATE <= rate <= MAX_AUDIO_RATE:
        raise _bad_shape(
            f"`{where}` says its sample rate is {rate} Hz; this server takes {MIN_AUDIO_RATE} to "
            f"{MAX_AUDIO_RATE} Hz."
        )
    if not 1 <= channels <= MAX_AUDIO_CHANNELS:
        raise _bad_shape(f"`{where}` has {channels} channels; this server takes 1 to {MAX_AUDIO_CHANNELS}.")
    seconds = frames / rate
    if seconds > limits.max_audio_seconds:
        raise _too_large(
            f"`{where}` is {seconds:.1f} s of audio; this server takes at most {limits.max_audio_seconds:g} s "
            "(--max-audio-seconds)."
        )


def _reason(exc: BaseException) -> str:
    """A decoder's message without the object reprs some of them hold (`<_io.BytesIO object at 0x...>`)."""
    return without_reprs(str(exc)) or type(exc).__name__
