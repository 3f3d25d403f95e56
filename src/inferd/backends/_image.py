"""Image parameters shared by the image-to-image backends."""

from __future__ import annotations

from typing import Any

from .base import InputError

MAX_TARGET_SIDE = 8192


def parse_target_size(value: Any) -> tuple[int, int] | None:
    """The task's `target_size` ({"width": w, "height": h}) as (width, height); None when not given."""
    if value is None:
        return None
    try:
        width, height = int(value["width"]), int(value["height"])
    except (KeyError, TypeError, ValueError):
        raise InputError(
            "Parameter `target_size` must be {'width': w, 'height': h} with whole numbers."
        ) from None
    if not (1 <= width <= MAX_TARGET_SIDE and 1 <= height <= MAX_TARGET_SIDE):
        raise InputError(
            f"Parameter `target_size` must be 1 to {MAX_TARGET_SIDE} pixels a side, got {width} x {height}."
        )
    return width, height
