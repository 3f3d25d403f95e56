"""image-to-text as OCR: PaddleOCR PP-OCRv4 (text detection + ch/en recognition + orientation), by RapidOCR.

PyPI `rapidocr-onnxruntime==1.4.4` ships the three ONNX models and runs them with ONNX Runtime; this backend
calls `RapidOCR(det_model_path=..., cls_model_path=..., rec_model_path=...)` on the hash-checked files of the
catalogue entry, and `engine(image)` per image, which returns [box, text, score] per text line found.
(Newer `rapidocr` 3.x downloads its models at run time: not used.)

The lines are put in reading order: boxes whose vertical centres lie within half a line height of each
other form one row, read left to right and joined by a space; rows are read top to bottom and joined by
"\\n". Per image the result is {"generated_text": text} (the server wraps it in the list clients expect);
an image with no text gives "". `max_new_tokens`, when given, cuts the text to that many characters
(OCR has no tokens; characters are the honest unit). Other generation parameters have no effect.

Entry options: `det`, `cls`, `rec` (file names in the model folder), `threads` (ONNX Runtime intra-op
threads; default: half the CPUs, at least 1: ORT's workers spin while waiting, and on this 2-core machine
under load one thread read a two-line image in 0.28 s against 1.0 s with ORT's default), `engine` (more keyword arguments for `RapidOCR(...)`, e.g.
{"det_limit_type": "max", "det_limit_side_len": 960}, PaddleOCR's own detector sizing, which the default
catalogue entry uses: RapidOCR's "min"/736 upscales every image whose short side is under 736 pixels, so a
900 x 200 line of text is detected at 3312 x 736, about 10x slower, though it reads tiny low-resolution
text better).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Backend, InputError, Model
from .efficientnet import usable_cpus

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "image-to-text"
FILES = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
}


def reading_order(lines: Sequence[Any]) -> str:
    """[box (4 corner points), text, score] lines -> the text, row by row, left to right in a row."""
    placed = []
    for box, text, _score in lines:
        ys = [float(p[1]) for p in box]
        xs = [float(p[0]) for p in box]
        placed.append(((min(ys) + max(ys)) / 2, max(1.0, max(ys) - min(ys)), min(xs), str(text)))
    rows: list[list[tuple[float, float, float, str]]] = []
    for item in sorted(placed):
        centre, height = item[0], item[1]
        if rows:
            last = rows[-1]
            row_centre = sum(i[0] for i in last) / len(last)
            row_height = sum(i[1] for i in last) / len(last)
            if abs(centre - row_centre) <= min(height, row_height) / 2:
                last.append(item)
                continue
        rows.append([item])
    return "\n".join(" ".join(i[3] for i in sorted(row, key=lambda i: i[2])) for row in rows)


class RapidOcrModel(Model):
    tasks = (TASK,)

    def __init__(self, engine: Any, nbytes: int) -> None:
        self._engine = engine
        self._size = nbytes
        self._lock = threading.Lock()  # RapidOCR keeps per-call settings on the object

    def read(self, image: Any) -> str:
        # A PIL image: RapidOCR's loader turns it into the BGR array its models expect.
        with self._lock:
            lines, _elapsed = self._engine(image.convert("RGB"))
        return reading_order(lines or [])

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        limit = parameters.get("max_new_tokens")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InputError("max_new_tokens must be a positive integer.")
        results = []
        for image in inputs:
            text = self.read(image)
            results.append({"generated_text": text[:limit] if limit else text})
        return results

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._engine = None


class RapidOcrBackend(Backend):
    name = "rapidocr"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise RuntimeError(
                "The rapidocr backend needs rapidocr-onnxruntime 1.4.4, installed without its opencv-python "
                "dependency: pip install 'inferd[models-vision]' && "
                "pip install --no-deps rapidocr-onnxruntime==1.4.4"
            ) from exc
        folder = Path(path)
        kwargs: dict[str, Any] = {}
        total = 0
        for part, default in FILES.items():
            model = folder / str(entry.options.get(part, default))
            if not model.is_file():
                raise RuntimeError(f"OCR model {model} is missing.")
            kwargs[f"{part}_model_path"] = str(model)
            total += model.stat().st_size
        kwargs["intra_op_num_threads"] = int(entry.options.get("threads") or max(1, usable_cpus() // 2))
        kwargs.update(entry.options.get("engine", {}))
        # ONNX Runtime's copies of the weights plus the detector's activations on a large page.
        return RapidOcrModel(RapidOCR(**kwargs), 3 * total + 128 * 2**20)
