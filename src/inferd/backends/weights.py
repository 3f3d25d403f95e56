"""Refuse weights holding NaN or infinity at load time: the sign of a corrupt file that has no sha256 to check.

A flipped or overwritten byte in `model.safetensors` keeps the file readable, and a float32 whose exponent bits
are all ones is NaN or infinity: random bytes over a weight tensor make some almost surely. Such a model loaded
and answered `[null, null, ...]` vectors (issue 10, row 15). A sha256 in the catalogue catches every corruption
before loading; this catches the likely ones for models declared without it, for the cost of one pass of
`isfinite` over weights already in memory (about 30 ms for a 22M-parameter encoder).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


class CorruptWeightsError(ValueError):
    """A weight tensor holds NaN or infinity."""


def _finite(tensor: Any) -> bool:
    if isinstance(tensor, np.ndarray):
        return tensor.dtype.kind not in "fc" or bool(np.isfinite(tensor).all())
    if getattr(tensor, "is_floating_point", lambda: False)():  # a torch tensor, without importing torch
        import torch

        return bool(torch.isfinite(tensor).all())
    return True


def check_finite_weights(named: Iterable[tuple[str, Any]], what: str) -> None:
    """CorruptWeightsError naming the first tensor of `named` (name, numpy array or torch tensor) with NaN/inf."""
    for name, tensor in named:
        if not _finite(tensor):
            raise CorruptWeightsError(
                f"{what}: weight {name} holds NaN or infinity, so the weights file is corrupt (or was saved from "
                "a broken model). Download it again; a sha256 for the file in the catalogue refuses a corrupt "
                "copy before loading."
            )
