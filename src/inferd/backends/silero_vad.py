"""audio-classification as voice activity detection: Silero VAD v6 driven by ONNX Runtime, without torch.

The `silero-vad` package declares torch, but its ONNX model needs only onnxruntime and numpy; this is the
same loop as its `OnnxWrapper`: 16 kHz audio in 512-sample frames (32 ms), each fed with the previous
frame's last 64 samples as context and the recurrent state (2 x 1 x 128) carried over. The catalogue's
install step copies `silero_vad.onnx` out of the wheel, so the package itself never needs installing.

Output, best first: [{"label": "speech", "score": s}, {"label": "no-speech", "score": 1 - s}], where
s = the highest mean speech probability over any 256 ms window (8 frames; Silero's own minimum speech
duration is 250 ms). A short utterance in a long clip therefore still scores high, and a single frame
spike in noise does not. Clips shorter than the window are scored on their mean. `top_k` keeps the best k
labels; `function_to_apply` has no effect (the scores already are probabilities that sum to one).

Entry options: `file` ("silero_vad.onnx"), `window_frames` (8).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._audio import as_mono_float32, resample
from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "audio-classification"
RATE = 16_000
FRAME = 512
CONTEXT = 64
LABELS = ("speech", "no-speech")


class SileroVadModel(Model):
    tasks = (TASK,)

    def __init__(self, session: Any, window_frames: int, size: int) -> None:
        self._session = session
        self._window = max(1, window_frames)
        self._size = size
        self._lock = threading.Lock()

    def frame_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability of each 32 ms frame of 16 kHz mono float32 audio."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        pad = (-x.size) % FRAME
        x = np.concatenate([np.zeros(CONTEXT, np.float32), x, np.zeros(pad, np.float32)])
        state = np.zeros((2, 1, 128), dtype=np.float32)
        sr = np.array(RATE, dtype=np.int64)
        probs = np.empty((x.size - CONTEXT) // FRAME, dtype=np.float32)
        with self._lock:
            for i in range(probs.size):
                chunk = x[i * FRAME : i * FRAME + CONTEXT + FRAME][None, :]
                out, state = self._session.run(None, {"input": chunk, "state": state, "sr": sr})
                probs[i] = float(out[0, 0])
        return probs

    def speech_score(self, probs: np.ndarray) -> float:
        if probs.size <= self._window:
            return float(probs.mean())
        means = np.convolve(probs, np.full(self._window, 1.0 / self._window), mode="valid")
        return float(means.max())

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        top_k = parameters.get("top_k")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError("top_k must be a positive integer.")
        results = []
        for audio in inputs:
            array, rate = as_mono_float32(audio)
            score = min(
                1.0, max(0.0, self.speech_score(self.frame_probabilities(resample(array, rate, RATE))))
            )
            scored = sorted(zip((score, 1.0 - score), LABELS, strict=True), key=lambda pair: -pair[0])
            labels = [{"label": label, "score": value} for value, label in scored]
            results.append(labels[:top_k] if top_k else labels)
        return results

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._session = None


class SileroVadBackend(Backend):
    name = "silero-vad"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            import onnxruntime
        except ImportError as exc:
            raise RuntimeError(
                "The silero-vad backend needs onnxruntime: pip install 'inferd[models-audio]'."
            ) from exc
        folder = Path(path)
        onnx = folder / str(entry.options.get("file", "silero_vad.onnx")) if folder.is_dir() else folder
        if not onnx.is_file():
            raise RuntimeError(f"Silero VAD model {onnx} is missing; run the model install step.")
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1  # a frame is tiny: threads cost more than they save
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(onnx), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        return SileroVadModel(session, int(entry.options.get("window_frames", 8)), 4 * onnx.stat().st_size)
