"""The `diffusers` backend: a diffusers pipeline folder (model_index.json, safetensors only) for text-to-image and
image-to-image, through diffusers' auto pipelines. One loaded model serves both tasks where the weights allow:
the image-to-image pipeline is made from the text-to-image one (`from_pipe`), sharing its modules.

    [models."my-org/sd-turbo"]
    tasks = ["text-to-image", "image-to-image"]
    backend = "diffusers"
    source = "path:/models/sd-turbo"           # or "hub:stabilityai/sd-turbo" from the local HF cache
    options = { max_steps = 50, max_pixels = 262144, device = "cpu", dtype = "float32" }

Options: `max_steps` (denoising steps per request, default 50) and `max_pixels` (height x width per image,
default 1024 x 1024) cap what one request may ask, so that one request cannot hold the CPU for an hour;
`default_steps` is used when a request names none (default: the pipeline's own, within `max_steps`).
`device` ("cpu", "cuda", "cuda:1", "mps") and `dtype` ("float32", "float16", "bfloat16") are given to
diffusers as its docs describe (`torch_dtype=` at load, `pipe.to(device)`); only CPU is tested here.

Requests with equal parameters are batched by the server: a batch is one pipeline call over a list of prompts
(images of one size for image-to-image). A `seed` seeds one CPU `torch.Generator` per image, so an image
depends on its prompt and seed only, whatever batch it ran in and whatever the device (diffusers draws the
noise on the CPU when given CPU generators).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Backend, Cancelled, InputError, Model, cancel_requested
from .diffusion_params import Caps, pipeline_kwargs, scheduler_class, target_size

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

SUPPORTED_TASKS = ("image-to-image", "text-to-image")
# Components diffusers loads from these libraries are plain weights; any other library names a module to import
# from the folder (a community pipeline): remote code.
_SAFE_LIBRARIES = {"diffusers", "transformers", None}


class _Interrupted(Exception):
    """Raised from the step callback: every request of the running batch has gone."""


def check_pipeline_folder(entry: ModelEntry, path: str) -> dict[str, Any]:
    """model_index.json, its components from diffusers/transformers only, safetensors weights; its content."""
    from .transformers._common import UnsafeModelError, check_folder, read_json

    check_folder(entry, path)  # safetensors present, no auto_map
    index = read_json(path, "model_index.json")
    if not isinstance(index, dict) or not index.get("_class_name"):
        raise UnsafeModelError(
            f"Model '{entry.model_id}': {path} has no model_index.json; the diffusers backend loads a diffusers "
            "pipeline folder (as saved by `pipeline.save_pretrained`)."
        )
    if not entry.trust_remote_code:
        for name, spec in index.items():
            library = spec[0] if isinstance(spec, list) and spec else None
            if not name.startswith("_") and library not in _SAFE_LIBRARIES:
                raise UnsafeModelError(
                    f"Model '{entry.model_id}': component `{name}` comes from `{library}`, which is code "
                    "shipped with the model; set `trust_remote_code: true` on its entry to allow it."
                )
    return index


class DiffusionModel(Model):
    """One pipeline folder; `predict` runs a batch of prompts (or images) with one set of parameters."""

    def __init__(self, entry: ModelEntry, pipes: Mapping[str, Any], caps: Caps, device: str) -> None:
        self.entry = entry
        self.pipes = dict(pipes)
        self.tasks = tuple(pipes)
        self.caps = caps
        self.device = device
        self._lock = threading.Lock()
        self._progress: dict[str, Any] | None = None
        self.interrupted_calls = 0  # calls stopped midway because every request had gone

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        pipe = self.pipes.get(task)
        if pipe is None:
            raise InputError(f"Model '{self.entry.model_id}' does not serve task '{task}'.")
        if not inputs:
            return []
        kwargs = pipeline_kwargs(task, pipe, parameters, self.caps)
        groups: list[tuple[list[int], dict[str, Any]]]
        if task == "text-to-image":
            groups = [(list(range(len(inputs))), {"prompt": [str(x) for x in inputs]})]
        else:
            groups = self._image_groups(inputs, parameters)
        results: list[Any] = [None] * len(inputs)
        original = pipe.scheduler
        if parameters.get("scheduler"):
            # Per call: the model's thread runs one call at a time, and the default comes back after it.
            pipe.scheduler = scheduler_class(pipe, parameters["scheduler"]).from_config(original.config)
        try:
            for indices, group in groups:
                images = self._call(task, pipe, {**kwargs, **group}, len(indices), parameters)
                for i, image in zip(indices, images, strict=True):
                    results[i] = image
        finally:
            pipe.scheduler = original
            with self._lock:
                self._progress = None
        return results

    def _image_groups(
        self, inputs: Sequence[Any], parameters: Mapping[str, Any]
    ) -> list[tuple[list[int], dict[str, Any]]]:
        """One pipeline call per image size (the latents of a batch share a shape)."""
        size = target_size(parameters, self.caps)
        by_size: dict[tuple[int, int], list[int]] = {}
        images = []
        for i, image in enumerate(inputs):
            image = image.convert("RGB")
            if size is not None and image.size != size:
                image = image.resize(size)
            self.caps.check_pixels(image.width, image.height, what="the input image")
            images.append(image)
            by_size.setdefault(image.size, []).append(i)
        prompt = str(parameters.get("prompt") or "")
        return [
            (idx, {"image": [images[i] for i in idx], "prompt": [prompt] * len(idx)})
            for idx in by_size.values()
        ]

    def _call(
        self,
        task: str,
        pipe: Any,
        kwargs: dict[str, Any],
        count: int,
        parameters: Mapping[str, Any],
    ) -> list[Any]:
        import torch

        seed = parameters.get("seed")
        if seed is not None:
            kwargs["generator"] = [torch.Generator("cpu").manual_seed(int(seed)) for _ in range(count)]
        negative = kwargs.get("negative_prompt")
        if negative is not None:
            kwargs["negative_prompt"] = [negative] * count

        def on_step_end(p: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            total = int(getattr(p, "num_timesteps", 0) or 0)
            with self._lock:
                self._progress = {"task": task, "images": count, "step": step + 1, "total_steps": total}
            # The server's cancel flag: every request of the batch has gone, or timed out.
            if cancel_requested():
                raise _Interrupted()
            return callback_kwargs

        if "callback_on_step_end" in inspect.signature(pipe.__call__).parameters:
            kwargs["callback_on_step_end"] = on_step_end
        try:
            with torch.inference_mode():
                output = pipe(output_type="pil", **kwargs)
        except _Interrupted:
            self.interrupted_calls += 1
            raise Cancelled("Interrupted: every request of this batch has gone.") from None
        except (ValueError, TypeError) as exc:  # diffusers' check_inputs: the request's values
            raise InputError(str(exc) or type(exc).__name__) from exc
        images = list(output.images)
        if len(images) != count:
            raise RuntimeError(f"The pipeline returned {len(images)} images for {count} inputs.")
        return images

    def progress(self) -> Mapping[str, Any] | None:
        with self._lock:
            return dict(self._progress) if self._progress else None

    def memory_bytes(self) -> int:
        import torch

        from .transformers._common import module_bytes

        pipe = next(iter(self.pipes.values()), None)
        modules = [m for m in getattr(pipe, "components", {}).values() if isinstance(m, torch.nn.Module)]
        return module_bytes(modules)

    def close(self) -> None:
        self.pipes.clear()


class DiffusersBackend(Backend):
    name = "diffusers"

    def load(self, entry: ModelEntry, path: str) -> Model:
        import torch
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging

        from .transformers._common import configure_threads

        unknown = sorted(set(entry.tasks) - set(SUPPORTED_TASKS))
        if unknown:
            raise ValueError(
                f"Model '{entry.model_id}': the diffusers backend serves {list(SUPPORTED_TASKS)}, not {unknown}."
            )
        check_pipeline_folder(entry, path)
        configure_threads()
        diffusers_logging.disable_progress_bar()  # per-component load bars, one line each, in the server's log
        options = dict(entry.options)
        caps = Caps.from_options(options, entry.model_id)
        device = str(options.get("device", "cpu"))
        dtype_name = str(options.get("dtype", "float32"))
        dtype = getattr(torch, dtype_name, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"Model '{entry.model_id}': options.dtype '{dtype_name}' is not a torch dtype.")
        load_kwargs: dict[str, Any] = {
            "use_safetensors": True,
            "local_files_only": True,
            "torch_dtype": dtype,
        }
        pipes: dict[str, Any] = {}
        first = AutoPipelineForText2Image if "text-to-image" in entry.tasks else AutoPipelineForImage2Image
        pipe = first.from_pretrained(str(Path(path)), **load_kwargs).to(device)
        pipe.set_progress_bar_config(disable=True)
        if "text-to-image" in entry.tasks:
            pipes["text-to-image"] = pipe
        if "image-to-image" in entry.tasks:
            if "text-to-image" in pipes:
                pipe = AutoPipelineForImage2Image.from_pipe(pipe)
                pipe.set_progress_bar_config(disable=True)
            pipes["image-to-image"] = pipe
        return DiffusionModel(entry, pipes, caps, device)


__all__ = ["SUPPORTED_TASKS", "DiffusersBackend", "DiffusionModel"]
