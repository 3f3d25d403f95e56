"""image-segmentation with MediaPipe Selfie Segmentation (one class: person), run by Google's LiteRT.

The model is `selfie_segmentation.tflite` from npm `@mediapipe/selfie_segmentation` (the catalogue's install
step keeps only that file), run by `ai_edge_litert.interpreter.Interpreter` (PyPI `ai-edge-litert`).
Input 1 x 256 x 256 x 3 float RGB in [0, 1] (the whole image, squashed); output 1 x 256 x 256 x 1, the
probability that each pixel belongs to a person. The probability map is resized (bilinear) to the original
image size, then cut at `mask_threshold` (default 0.5) into a mode "L" PIL mask of 0 / 255; the server
encodes it as base64 PNG.

Output: [{"label": "person", "score", "mask"}] where score is the mean probability over the mask's pixels,
or [] when no pixel passes `mask_threshold` (or the score is below `threshold`, default 0). Only "person" is
returned, not a "background" segment: the model has one output channel, the background is the mask's
complement, and the transformers pipeline also lists only the classes it finds. It is a selfie model: it
marks the foreground of portraits and half-body shots and also gives high probability to non-human
subjects (a cat photo comes out mostly "person"); it does not say whether a person is present.
`subtask` may be "semantic" or omitted; "instance" and "panoptic" are refused (one class, no instances).

Entry options: `file` ("selfie_segmentation.tflite"), `threads` (LiteRT threads, default half the CPUs,
at least 1, as the other vision backends).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Backend, InputError, Model
from .efficientnet import usable_cpus

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "image-segmentation"
LABEL = "person"


def _unit(parameters: Mapping[str, Any], name: str, default: float) -> float:
    value = parameters.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError(f"{name} must be a number between 0 and 1.")
    return float(value)


class LiteRtSegmentationModel(Model):
    tasks = (TASK,)

    def __init__(self, interpreter: Any, nbytes: int) -> None:
        self._interpreter = interpreter
        source = interpreter.get_input_details()[0]
        self._input_index = source["index"]
        _, self._height, self._width, _ = (int(v) for v in source["shape"])
        self._output_index = interpreter.get_output_details()[0]["index"]
        self._size = nbytes
        self._lock = threading.Lock()  # an Interpreter holds its tensors: one invoke at a time

    def probabilities(self, image: Any) -> np.ndarray:
        """Person probability per pixel of `image` (H x W float32, the image's own size)."""
        from PIL import Image

        image = image.convert("RGB")
        x = np.asarray(image.resize((self._width, self._height), Image.Resampling.BILINEAR), np.float32)
        x = (x / 255.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input_index, x)
            self._interpreter.invoke()
            out = np.array(self._interpreter.get_tensor(self._output_index), dtype=np.float32)
        small = Image.fromarray(out.reshape(self._height, self._width))
        return np.asarray(small.resize(image.size, Image.Resampling.BILINEAR), dtype=np.float32)

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        from PIL import Image

        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        if parameters.get("subtask") not in (None, "semantic"):
            raise InputError("This model does semantic segmentation only (one class: person).")
        mask_threshold = _unit(parameters, "mask_threshold", 0.5)
        threshold = _unit(parameters, "threshold", 0.0)
        results: list[Any] = []
        for image in inputs:
            probs = self.probabilities(image)
            inside = probs > mask_threshold
            if not inside.any():
                results.append([])
                continue
            score = float(probs[inside].mean())
            if score < threshold:
                results.append([])
                continue
            mask = Image.fromarray(inside.astype(np.uint8) * 255)
            results.append([{"label": LABEL, "score": score, "mask": mask}])
        return results

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._interpreter = None


class LiteRtSegmentationBackend(Backend):
    name = "litert-segmentation"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise RuntimeError(
                "The litert-segmentation backend needs ai-edge-litert: pip install 'inferd[models-vision]'."
            ) from exc
        folder = Path(path)
        model = (
            folder / str(entry.options.get("file", "selfie_segmentation.tflite"))
            if folder.is_dir()
            else folder
        )
        if not model.is_file():
            raise RuntimeError(f"Segmentation model {model} is missing; run the model install step.")
        interpreter = Interpreter(
            model_path=str(model), num_threads=int(entry.options.get("threads") or max(1, usable_cpus() // 2))
        )
        interpreter.allocate_tensors()
        # The float32 weights plus LiteRT's arena for 256 x 256 activations.
        return LiteRtSegmentationModel(interpreter, 4 * model.stat().st_size + 16 * 2**20)
