"""object-detection with pjreddie's YOLOv3-tiny (COCO, 80 classes), run by OpenCV's dnn module.

The network is read by OpenCV itself, `cv2.dnn.readNetFromDarknet(cfg, weights)`, which exists in OpenCV 4.x
only (5.x dropped the Darknet importer): the models-vision extra pins `opencv-python-headless<5`.

Per image: `blobFromImage` scales pixels to [0, 1] and resizes to 416 x 416 without letterboxing (the input
is RGB already, as Darknet expects); both YOLO heads give rows [cx, cy, w, h, objectness, 80 class scores]
where the class scores already include the objectness. Each row keeps its best class; rows scored below
`threshold` are dropped, then OpenCV's NMS (IoU 0.45) runs over all classes, as Darknet's demo does.

Output, best first: [{"label", "score", "box": {"xmin", "ymin", "xmax", "ymax"}}], boxes in integer pixels of
the original image, clipped to it. `threshold` defaults to 0.25, Darknet's own default: YOLOv3-tiny's scores
are low (COCO mAP50 about 33), so the transformers pipeline's 0.5 would hide most of its true detections.

Entry options: `cfg`, `weights`, `names` (file names in the model folder), `size` (416), `nms` (0.45).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "object-detection"
DEFAULT_THRESHOLD = 0.25


def _threshold(parameters: Mapping[str, Any]) -> float:
    value = parameters.get("threshold")
    if value is None:
        return DEFAULT_THRESHOLD
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError("threshold must be a number between 0 and 1.")
    return float(value)


class OpenCvYoloModel(Model):
    tasks = (TASK,)

    def __init__(self, net: Any, names: list[str], size: int, nms: float, nbytes: int) -> None:
        self._net = net
        self._outputs = net.getUnconnectedOutLayersNames()
        self._names = names
        self._input = size
        self._nms = nms
        self._size = nbytes
        self._lock = threading.Lock()  # a cv2.dnn.Net holds its input: one forward at a time

    def detect(self, image: Any, threshold: float) -> list[dict[str, Any]]:
        import cv2

        pixels = np.asarray(image.convert("RGB"))
        height, width = pixels.shape[:2]
        blob = cv2.dnn.blobFromImage(pixels, 1 / 255.0, (self._input, self._input), swapRB=False, crop=False)
        with self._lock:
            self._net.setInput(blob)
            rows = np.concatenate(
                [out.reshape(-1, out.shape[-1]) for out in self._net.forward(self._outputs)]
            )
        scores = rows[:, 5:]
        classes = scores.argmax(axis=1)
        best = scores[np.arange(len(rows)), classes]
        keep = best >= max(threshold, 1e-6)
        rows, classes, best = rows[keep], classes[keep], best[keep]
        if not len(rows):
            return []
        centre_x, centre_y = rows[:, 0] * width, rows[:, 1] * height
        box_w, box_h = rows[:, 2] * width, rows[:, 3] * height
        xmin = np.clip(centre_x - box_w / 2, 0, width - 1)
        ymin = np.clip(centre_y - box_h / 2, 0, height - 1)
        xmax = np.clip(centre_x + box_w / 2, 0, width - 1)
        ymax = np.clip(centre_y + box_h / 2, 0, height - 1)
        rects = [
            [float(x), float(y), float(x2 - x), float(y2 - y)]
            for x, y, x2, y2 in zip(xmin, ymin, xmax, ymax, strict=True)
        ]
        kept = np.asarray(cv2.dnn.NMSBoxes(rects, best.tolist(), threshold, self._nms), dtype=int).reshape(-1)
        found = [
            {
                "label": self._names[int(classes[i])],
                "score": float(best[i]),
                "box": {
                    "xmin": int(round(xmin[i])),
                    "ymin": int(round(ymin[i])),
                    "xmax": int(round(xmax[i])),
                    "ymax": int(round(ymax[i])),
                },
            }
            for i in kept
        ]
        return sorted(found, key=lambda d: -d["score"])

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        threshold = _threshold(parameters)
        return [self.detect(image, threshold) for image in inputs]

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._net = None


class OpenCvYoloBackend(Backend):
    name = "opencv-yolo"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            import cv2
        except ImportError as exc:
            raise RuntimeError(
                "The opencv-yolo backend needs OpenCV 4.x: pip install 'inferd[models-vision]'."
            ) from exc
        if not hasattr(cv2.dnn, "readNetFromDarknet"):
            raise RuntimeError(
                f"OpenCV {cv2.__version__} has no Darknet importer (removed in 5.x): "
                "pip install 'opencv-python-headless>=4.5,<5' and no other opencv-* package."
            )
        folder = Path(path)
        options = entry.options
        cfg = folder / str(options.get("cfg", "yolov3-tiny.cfg"))
        weights = folder / str(options.get("weights", "yolov3-tiny.weights"))
        names_file = folder / str(options.get("names", "coco.names"))
        for needed in (cfg, weights, names_file):
            if not needed.is_file():
                raise RuntimeError(f"YOLO file {needed} is missing; run the model install step.")
        net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
        size = int(options.get("size", 416))
        nms = float(options.get("nms", 0.45))
        return OpenCvYoloModel(net, names, size, nms, 2 * weights.stat().st_size)
