"""What every task runner shares: the load-time checks, pipeline construction, parameter checks, plain data."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..base import InputError

if TYPE_CHECKING:
    from ...catalogue import ModelEntry

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".h5", ".msgpack")
_threads_lock = threading.Lock()
_threads_set = False


class UnsafeModelError(RuntimeError):
    """The model folder cannot be loaded safely (pickled weights only, or remote code not allowed)."""


def configure_threads() -> None:
    """Size torch's intra-op pool once per process: $INFERD_TORCH_THREADS, else every core but one on a small
    machine (the server's event loop needs a core: spinning OpenMP workers took it, docs/benchmarks.md)."""
    global _threads_set
    with _threads_lock:
        if _threads_set:
            return
        wanted = os.environ.get("INFERD_TORCH_THREADS")
        cores = os.cpu_count() or 1
        default = max(1, cores - 1) if cores <= 4 else cores
        torch.set_num_threads(max(1, int(wanted) if wanted else default))
        _threads_set = True


def check_folder(entry: ModelEntry, path: str) -> None:
    """Refuse pickled weights and code the catalogue does not allow, before transformers reads anything."""
    folder = Path(path)
    if not folder.is_dir():
        raise UnsafeModelError(f"Model '{entry.model_id}': {path} is not a folder.")
    files = [p for p in folder.rglob("*") if p.is_file()]
    if not any(p.suffix == ".safetensors" for p in files):
        pickled = sorted(p.name for p in files if p.suffix in _PICKLE_SUFFIXES)
        found = f" (found {', '.join(pickled)})" if pickled else ""
        raise UnsafeModelError(
            f"Model '{entry.model_id}' has no .safetensors weights{found}. inferd loads safetensors only: "
            "pickled weights (.bin/.pt) can run arbitrary code. Convert the model to safetensors."
        )
    if entry.trust_remote_code:
        return
    for name in ("config.json", "tokenizer_config.json", "preprocessor_config.json"):
        config = _read_json(folder / name)
        if isinstance(config, dict) and config.get("auto_map"):
            raise UnsafeModelError(
                f"Model '{entry.model_id}' needs its own Python code ({name} has `auto_map`); "
                "set `trust_remote_code: true` on its catalogue entry to allow it."
            )


def _read_json(path: Path) -> Any:
    """The file's JSON value, or {} when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_json(folder: str, name: str) -> Any:
    return _read_json(Path(folder) / name)


def load_kwargs(entry: ModelEntry) -> dict[str, Any]:
    """What every from_pretrained call gets: local files, safetensors, remote code only when allowed."""
    return {
        "use_safetensors": True,
        "local_files_only": True,
        "trust_remote_code": entry.trust_remote_code,
    }


def make_pipeline(hf_task: str, entry: ModelEntry, path: str, **kwargs: Any) -> Any:
    from transformers import pipeline

    build: Any = pipeline  # its overloads want a literal task name
    model_kwargs = {k: v for k, v in load_kwargs(entry).items() if k != "trust_remote_code"}
    return build(
        hf_task,
        model=path,
        device="cpu",
        trust_remote_code=entry.trust_remote_code,
        model_kwargs=model_kwargs,
        **kwargs,
    )


def plain(value: Any) -> Any:
    """numpy / torch scalars and arrays, tuples -> Python floats, ints and lists (JSON-ready)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return plain(value.tolist())
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def per_input(outputs: Any, n: int) -> list[Any]:
    """Pipelines unwrap a batch of one; put the list back so results always match inputs one to one."""
    if n == 1 and not (isinstance(outputs, list) and len(outputs) == 1):
        return [outputs]
    if not isinstance(outputs, list) or len(outputs) != n:
        raise RuntimeError(f"The pipeline returned {type(outputs).__name__} for {n} inputs.")
    return outputs


class Runner:
    """One task on one loaded model: `run(inputs, params)` -> one wire-shaped result per input."""

    # The task parameters this runner honours; others are refused with an InputError naming them.
    honoured: frozenset[str] = frozenset()
    # True when the constructor takes a third argument, a dict shared by the runners of one model folder
    # (feature-extraction and sentence-similarity load the weights once).
    shares_model: bool = False
    # Longest text input in tokens, for the server's token budget; 0: the inputs are not priced in tokens.
    max_input_tokens: int = 0
    # Bytes held outside the torch modules (an ONNX Runtime session), for the server's memory-bounded LRU.
    extra_bytes: int = 0

    def run(self, inputs: Sequence[Any], params: Mapping[str, Any]) -> list[Any]:
        raise NotImplementedError

    def modules(self) -> list[torch.nn.Module]:
        pipe = getattr(self, "pipe", None)
        return [pipe.model] if pipe is not None else []


def text_limit(tokenizer: Any, fallback: int = 512) -> int:
    """The tokenizer's input limit (transformers puts ~1e30 there when the model does not say)."""
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit <= 1 << 20 else fallback


def check_params(task: str, params: Mapping[str, Any], honoured: frozenset[str]) -> None:
    unused = sorted(k for k, v in params.items() if v is not None and k not in honoured)
    if unused:
        raise InputError(
            f"The transformers backend cannot honour parameter(s) {unused} for task '{task}'. "
            f"Supported: {sorted(honoured)}."
        )


def pick(params: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: params[n] for n in names if params.get(n) is not None}


_GENERATE_LIMIT = 4096


def generate_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """`generate_parameters` checked: plain values only, lengths bounded like `max_new_tokens`."""
    extra = params.get("generate_parameters") or {}
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if not isinstance(value, (bool, int, float, str, list, type(None))):
            raise InputError(f"generate_parameters.{key} must be a plain JSON value.")
        if key in ("max_new_tokens", "max_length") and isinstance(value, int) and value > _GENERATE_LIMIT:
            raise InputError(f"generate_parameters.{key} must be at most {_GENERATE_LIMIT}.")
        out[key] = value
    return out


def as_input_error(fn: Callable[[], Any]) -> Any:
    """Run a pipeline call; what transformers rejects as a bad value is the caller's error (a 4xx)."""
    from transformers.pipelines.base import PipelineException

    try:
        return fn()
    except (ValueError, TypeError, AssertionError, PipelineException) as exc:
        raise InputError(str(exc) or type(exc).__name__) from exc
    except IndexError as exc:  # torch's embedding lookup past the model's positions
        raise InputError(f"The input is too long for this model ({exc}).") from exc


def module_bytes(modules: Sequence[torch.nn.Module]) -> int:
    seen: set[int] = set()
    total = 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            key = tensor.data_ptr()
            if key in seen:
                continue
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total
