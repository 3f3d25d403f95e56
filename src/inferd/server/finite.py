"""NaN and infinity in a model's answers are a fault of the model, answered 500 and logged, never sent as data.

JSON has no NaN: orjson writes it as `null`, so a model with corrupt weights answered 200 with `[null, null,
...]` vectors (issue 10, row 15). `checked_predict` runs on the model's thread, after `predict`, so the check
costs the event loop nothing; arrays are checked by numpy and lists of floats by one C-level sum.

Generated tokens carry a logprob, sent in TGI's `details` and stream events and in OpenAI's `logprobs`:
`finite_token` checks each one as the engine hands it on. Minus infinity is a probability that underflowed to
zero, not a fault: it is sent as OpenAI's documented floor, -9999.0 ("very unlikely"); NaN or plus infinity
is a fault of the model, answered like any other.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backends import Generation, Model
from ..backends.base import GeneratedToken
from ..tasks import Audio

LOGPROB_FLOOR = -9999.0  # what OpenAI sends for a token too unlikely to have a logprob


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


def finite_token(token: GeneratedToken) -> GeneratedToken:
    """`token`, its logprob of minus infinity raised to LOGPROB_FLOOR; NonFiniteOutput for NaN or +infinity."""
    logprob = token.logprob
    if logprob is None or math.isfinite(logprob):
        return token
    if logprob < 0:
        return dataclasses.replace(token, logprob=LOGPROB_FLOOR)
    raise NonFiniteOutput(f"generated token {token.id} has logprob {logprob}")


def finite_generation(generation: Generation) -> Generation:
    """`generation` with every token through `finite_token`."""
    generation.tokens = [finite_token(t) for t in generation.tokens]
    return generation
