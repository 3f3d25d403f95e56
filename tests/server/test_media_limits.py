"""media_limits: images and audio are judged by their header before any decode (issue 10, rows 2, 3, 9, 10).

Hostile files are crafted in memory: a PNG header can claim any size with no pixel data behind it, a WAV
header any sample rate.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import soundfile
from PIL import Image

from inferd.server.errors import ServerError
from inferd.server.media_limits import MediaLimits, decode_audio, decode_image

LIMITS = MediaLimits()


def png_header(width: int, height: int) -> bytes:
    """A PNG that says it is `width` x `height` and holds no pixel: what a decoder reads before allocating."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, format="PNG")
    return out.getvalue()


def wav_header(rate: int, samples: int = 4096, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV saying `rate` Hz, with `samples` frames of silence behind it."""
    data = b"\x00\x00" * samples * channels
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * 2 * channels) & 0xFFFFFFFF, 2 * channels, 16)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav(seconds: float, rate: int = 16000, channels: int = 1) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, np.zeros((int(seconds * rate), channels), np.float32), rate, format="WAV")
    return out.getvalue()


def refused(decode, data: bytes, limits: MediaLimits = LIMITS) -> ServerError:
    with pytest.raises(ServerError) as caught:
        decode(data, "inputs", limits)
    return caught.value


def test_an_ordinary_image_decodes_to_rgb():
    image = decode_image(png(64, 48), "inputs", LIMITS)
    assert (image.size, image.mode) == ((64, 48), "RGB")


@pytest.mark.parametrize(
    ("width", "height", "status", "flag"),
    [
        (20000, 1, 413, "--max-image-side"),  # the 99-byte PNG that took 5.3 GB once resized
        (1, 1_000_000, 413, "--max-image-side"),
        (64_000_000, 1, 413, "--max-image-side"),
        (10000, 10000, 413, "--max-image-pixels"),
        (20000, 20000, 413, "--max-image-pixels"),
        (10000, 1, 422, "--max-image-aspect"),  # 2.6 GB once resized
        (16000, 100, 422, "--max-image-aspect"),
    ],
)
def test_an_image_is_refused_from_its_header(width, height, status, flag):
    error = refused(decode_image, png_header(width, height))
    assert error.status_code == status
    assert flag in error.message and f"{width}x{height}" in error.message


def test_image_limits_are_settings():
    small = MediaLimits(max_image_pixels=100, max_image_side=1000, max_image_aspect=2)
    assert refused(decode_image, png(11, 10), small).status_code == 413
    assert refused(decode_image, png(30, 3), small).status_code == 422
    assert decode_image(png(10, 10), "inputs", small).size == (10, 10)


def test_an_unreadable_image_is_a_400_without_object_reprs():
    error = refused(decode_image, b"not an image at all")
    assert error.status_code == 400
    assert "0x" not in error.message and "BytesIO" not in error.message


def test_ordinary_audio_decodes_to_mono_at_its_rate():
    audio = decode_audio(wav(0.5, 22050, channels=2), "inputs", LIMITS)
    assert audio.sampling_rate == 22050 and audio.array.shape == (11025,) and audio.array.dtype == np.float32


@pytest.mark.parametrize("rate", [1, 4000, 2**31 - 1, 384_000])
def test_a_sample_rate_outside_8_to_192_khz_is_a_422(rate):
    error = refused(decode_audio, wav_header(rate))
    assert error.status_code == 422
    assert f"{rate} Hz" in error.message and "8000 to 192000 Hz" in error.message


def test_audio_longer_than_the_limit_is_a_413_naming_the_flag():
    error = refused(decode_audio, wav(2.0), MediaLimits(max_audio_seconds=1.5))
    assert error.status_code == 413 and "--max-audio-seconds" in error.message and "2.0 s" in error.message
    assert decode_audio(wav(1.0), "inputs", MediaLimits(max_audio_seconds=1.5)).seconds == pytest.approx(1.0)


def test_audio_with_more_channels_than_surround_is_a_422():
    assert refused(decode_audio, wav_header(16000, 16, channels=9)).status_code == 422


def test_unreadable_audio_is_a_400_without_object_reprs():
    error = refused(decode_audio, b"RIFF....WAVEnot really")
    assert error.status_code == 400
    assert "0x" not in error.message and "BytesIO" not in error.message
