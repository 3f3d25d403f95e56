"""Audio tasks on transformers pipelines. Inputs are inferd.tasks.Audio, resampled here to the model's rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from ...tasks import Audio
from .._audio import as_mono_float32, resample
from ..base import InputError
from ._common import Runner, as_input_error, generate_kwargs, make_pipeline, per_input, pick

if TYPE_CHECKING:
    from ...catalogue import ModelEntry


class _AudioPipeline(Runner):
    hf_task = ""

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline(self.hf_task, entry, path)
        self.rate = int(getattr(self.pipe.feature_extractor, "sampling_rate", 16000))

    def _arrays(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        arrays = []
        for audio in inputs:
            array, rate = as_mono_float32(audio)
            arrays.append(resample(array, rate, self.rate))
        return arrays

    def _call(self, inputs: Sequence[Any], *, pad: bool = True, **kwargs: Any) -> list[Any]:
        """One pipeline call per batch; `pad=False`: one call per group of equal-length clips, so no clip is
        padded, in the inputs' order."""
        arrays = self._arrays(inputs)
        groups: dict[int, list[int]] = {}
        for i, array in enumerate(arrays):
            groups.setdefault(len(array) if not pad else 0, []).append(i)
        results: list[Any] = [None] * len(arrays)
        for indices in groups.values():
            group = [arrays[i] for i in indices]
            out = as_input_error(partial(self.pipe, group, batch_size=len(group), **kwargs))
            for i, result in zip(indices, per_input(out, len(group)), strict=True):
                results[i] = result
        return results


class SpeechRecognition(_AudioPipeline):
    """Per input: {text}, plus chunks [{text, timestamp: [start, end]}] with return_timestamps."""

    hf_task = "automatic-speech-recognition"
    honoured = frozenset({"return_timestamps", "generate_parameters"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        ctc = self.pipe.type in ("ctc", "ctc_with_lm")
        kwargs: dict[str, Any] = {}
        if params.get("generate_parameters"):
            if ctc:
                raise InputError("This model (CTC) does not generate: it cannot take `generate_parameters`.")
            kwargs["generate_kwargs"] = generate_kwargs(params)
        if params.get("return_timestamps"):
            kwargs["return_timestamps"] = "word" if ctc else True
        results = []
        # A CTC model transcribes a padded clip's padding too, and one whose feature encoder normalises over
        # time (group norm: wav2vec2-base) reads it: in a padded batch a short clip's text would change with
        # its neighbours. Its clips are batched only with clips of their own length.
        for r in self._call(inputs, pad=not ctc, **kwargs):
            out: dict[str, Any] = {"text": str(r["text"]).strip() if ctc else str(r["text"])}
            if "chunks" in r:
                out["chunks"] = [
                    {"text": str(c["text"]), "timestamp": [_seconds(t) for t in c["timestamp"]]}
                    for c in r["chunks"]
                ]
            results.append(out)
        return results


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


class AudioClassification(_AudioPipeline):
    """Per input: [{label, score}] best first (every label unless top_k)."""

    hf_task = "audio-classification"
    honoured = frozenset({"top_k", "function_to_apply"})

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        results = self._call(inputs, **pick(params, "top_k", "function_to_apply"))
        return [
            sorted(
                ({"label": str(d["label"]), "score": float(d["score"])} for d in r), key=lambda d: -d["score"]
            )
            for r in results
        ]


class TextToSpeech(Runner):
    """Per input: inferd.tasks.Audio (mono float32 at the model's rate). `speaker`: an id of a multi-speaker model."""

    honoured = frozenset({"speaker"})

    def __init__(self, entry: ModelEntry, path: str) -> None:
        self.pipe = make_pipeline("text-to-audio", entry, path)

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        forward: dict[str, Any] = {}
        speaker = params.get("speaker")
        if speaker is not None:
            speakers = int(getattr(self.pipe.model.config, "num_speakers", 1) or 1)
            if speakers <= 1 or not str(speaker).isdigit() or int(speaker) >= speakers:
                raise InputError(
                    f"Unknown speaker {speaker!r}: this model has {speakers} speaker(s), numbered from 0."
                )
            forward["speaker_id"] = int(speaker)
        results = []
        for text in inputs:  # one at a time: a padded batch would pad the waveforms too
            if not str(text).strip():
                raise InputError("The text to read is empty.")
            out = as_input_error(partial(self.pipe, str(text), forward_params=forward))
            array = np.asarray(out["audio"], dtype=np.float32).reshape(-1)
            results.append(Audio(array=np.clip(array, -1.0, 1.0), sampling_rate=int(out["sampling_rate"])))
        return results
