"""Output pieces shared by several tasks. Results are plain dicts at run time; these tell an IDE the keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np


class Label(TypedDict):
    label: str
    score: float


class Box(TypedDict):
    xmin: int
    ymin: int
    xmax: int
    ymax: int


@dataclass
class Audio:
    """Decoded audio as a backend receives it (mono float32 in [-1, 1]) or returns it."""

    array: np.ndarray
    sampling_rate: int

    @property
    def seconds(self) -> float:
        return float(len(self.array)) / float(self.sampling_rate or 1)


Json = Any
