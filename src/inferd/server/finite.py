"""NaN and infinity in a model's answers are a fault of the model, answered 500 and logged, never sent as data.

JSON has no NaN: orjson writes it as `null`, so a model with corrupt weights answered 200 with `[null, null,
...]` vectors (issue 10, row 15). `checked_predict` runs on the model's thread, after `predict`, so the check
costs the event loop nothing; arrays are checked by numpy and lists of floats by one C-level sum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backends import Model
from ..tasks import Audio


class NonFiniteOutput(RuntimeError):
    """A model answered NaN or infinity: its weights or its arithmetic are broken for this input."""


def _all_finite_numbers(values: Sequence[Any]) -> bool:
    """True when `values` are numbers, none NaN or infinite: sum() is one C loop, and NaN and inf survive it.

    False for anything else (a non-number, or a sum that overflowed): the caller then looks at each item.
    """
    try:
        return math.isfinite(sum(values))
    except (TypeError, OverflowError):
        return False


def first_non_finite(value: Any) -> str | None:
    """Where in `value` (lists, dicts, numpy arrays, Audio) the first NaN or infinity is, else None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, (float, np.floating)):
            if not math.isfinite(node):
                return where or "the answer"
        elif isinstance(node, np.ndarray):
            if node.dtype.kind in "fc" and not np.isfinite(node).all():
                return where or "the answer"
        elif isinstance(node, Audio):
            stack.append((np.asarray(node.array), f"{where}.audio"))
        elif isinstance(node, Mapping):
            stack.extend((v, f"{where}.{k}") for k, v in node.items())
        elif isinstance(node, (list, tuple)):
            if not (node and isinstance(node[0], (int, float)) and _all_finite_numbers(node)):
                stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
    return None


def checked_predict(model: Model, task: str, inputs: list[Any], parameters: Any) -> list[Any]:
    """`model.predict`, raising NonFiniteOutput when an answer holds NaN or infinity."""
    results = model.predict(task, inputs, parameters)
    for i, result in enumerate(results):
        where = first_non_finite(result)
        if where is not None:
            raise NonFiniteOutput(f"answer {i} of {len(results)} holds NaN or infinity at {where}")
    return results
