"""Task parameters -> diffusers pipeline arguments, within the per-request caps of a model entry.

The task registry has already checked types and absolute bounds (inferd.tasks); what is checked here depends on
the model: its `max_steps` / `max_pixels` options, the sizes its VAE can take, the schedulers it is compatible
with. Every refusal is an InputError naming the field, so the server answers 4xx.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import InputError

HONOURED: Mapping[str, frozenset[str]] = {
    "text-to-image": frozenset(
        {"negative_prompt", "height", "width", "num_inference_steps", "guidance_scale", "seed", "scheduler"}
    ),
    # height/width (or target_size) resize the input image: the output has the input's size.
    "image-to-image": frozenset(
        {
            "prompt",
            "negative_prompt",
            "height",
            "width",
            "target_size",
            "num_inference_steps",
            "guidance_scale",
            "strength",
            "seed",
            "scheduler",
        }
    ),
}
# Stable Diffusion's UNet halves the latents three times, and its pipelines refuse other sizes.
SIZE_MULTIPLE = 8


@dataclass(frozen=True)
class Caps:
    """What one request may ask of a model: steps and pixels (its entry's `options`)."""

    max_steps: int = 50
    max_pixels: int = 1024 * 1024
    default_steps: int | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], model_id: str) -> Caps:
        values: dict[str, int] = {}
        for name in ("max_steps", "max_pixels", "default_steps"):
            value = options.get(name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"Model '{model_id}': options.{name} must be a whole number >= 1, got {value!r}."
                )
            values[name] = value
        caps = cls(**values)
        if caps.default_steps is not None and caps.default_steps > caps.max_steps:
            raise ValueError(f"Model '{model_id}': options.default_steps is above options.max_steps.")
        return caps

    def check_steps(self, steps: int) -> None:
        if steps > self.max_steps:
            raise InputError(
                f"Parameter `num_inference_steps` must be at most {self.max_steps} on this model "
                f"(its `max_steps` option), got {steps}."
            )

    def check_pixels(self, width: int, height: int, what: str = "the image") -> None:
        if width * height > self.max_pixels:
            raise InputError(
                f"Parameters `height` x `width` of {what} ({height} x {width} = {height * width} pixels) must be "
                f"at most {self.max_pixels} pixels on this model (its `max_pixels` option)."
            )


def _default(pipe: Any, name: str) -> Any:
    parameter = inspect.signature(pipe.__call__).parameters.get(name)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def _native_size(pipe: Any) -> int:
    """The side the pipeline draws by default: the UNet's sample size times the VAE's scale factor."""
    unet = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    sample = getattr(getattr(unet, "config", None), "sample_size", None)
    scale = getattr(pipe, "vae_scale_factor", 8)
    if isinstance(sample, (list, tuple)):
        sample = sample[0]
    return int(sample * scale) if isinstance(sample, int) else 512


def _check_side(name: str, value: int) -> None:
    if value % SIZE_MULTIPLE:
        raise InputError(f"Parameter `{name}` must be a multiple of {SIZE_MULTIPLE}, got {value}.")


def pipeline_kwargs(task: str, pipe: Any, parameters: Mapping[str, Any], caps: Caps) -> dict[str, Any]:
    """The pipeline call's keyword arguments for `parameters` (prompts, images and generators excepted)."""
    honoured = HONOURED[task]
    unused = sorted(k for k, v in parameters.items() if v is not None and k not in honoured)
    if unused:
        raise InputError(
            f"The diffusers backend cannot honour parameter(s) {unused} for task '{task}'. "
            f"Supported: {sorted(honoured)}."
        )
    kwargs: dict[str, Any] = {}
    steps = parameters.get("num_inference_steps")
    if steps is None:
        default = caps.default_steps or _default(pipe, "num_inference_steps")
        steps = min(int(default), caps.max_steps) if isinstance(default, int) else None
    if steps is not None:
        caps.check_steps(steps)
        kwargs["num_inference_steps"] = steps
    for name in ("guidance_scale", "negative_prompt", "strength"):
        if parameters.get(name) is not None:
            kwargs[name] = parameters[name]
    if task == "text-to-image":
        native = _native_size(pipe)
        height = parameters.get("height") or native
        width = parameters.get("width") or native
        _check_side("height", height)
        _check_side("width", width)
        caps.check_pixels(width, height)
        kwargs.update(height=height, width=width)
    return kwargs


def target_size(parameters: Mapping[str, Any], caps: Caps) -> tuple[int, int] | None:
    """(width, height) the input image is resized to (image-to-image), or None to keep its size."""
    size = parameters.get("target_size")
    width, height = parameters.get("width"), parameters.get("height")
    if size is not None:
        try:
            width, height = int(size["width"]), int(size["height"])
        except (KeyError, TypeError, ValueError):
            raise InputError(
                "Parameter `target_size` must be {'width': w, 'height': h} with whole numbers."
            ) from None
    if width is None and height is None:
        return None
    if width is None or height is None:
        raise InputError(
            "Parameters `height` and `width` go together for image-to-image (or use `target_size`)."
        )
    if width < 8 or height < 8:
        raise InputError(f"Parameter `target_size` must be at least 8 x 8, got {width} x {height}.")
    _check_side("width", width)
    _check_side("height", height)
    caps.check_pixels(width, height)
    return width, height


def scheduler_class(pipe: Any, name: str) -> Any:
    """The scheduler class `name` among those compatible with the pipeline's (diffusers' `compatibles`)."""
    current = pipe.scheduler
    choices = {cls.__name__: cls for cls in [type(current), *getattr(current, "compatibles", [])]}
    if name not in choices:
        raise InputError(
            f"Parameter `scheduler` must be one of {sorted(choices)} for this model, got {name!r}."
        )
    return choices[name]
