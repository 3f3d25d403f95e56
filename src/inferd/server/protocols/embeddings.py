"""Sentence vectors and cosine similarities through the engine, shared by the OpenAI and TEI routes.

Both go through `Engine.predict` (feature-extraction), so the texts of one request batch with those of every
other request to the same model. A model that gives one vector per token (a plain transformers folder, as the
HF feature-extraction pipeline does) has no sentence vector to offer these routes: 400 not_supported, pointing to its token
vectors on the pipeline route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from starlette.requests import Request

from ...tasks import TASKS, ParameterError
from ..errors import ServerError
from ..limits import unless_disconnected
from ..state import AppState
from ..waiting import waits_for_model

FEATURE_EXTRACTION = TASKS["feature-extraction"]


def check_parameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Feature-extraction parameters checked against the task's declared limits (400 naming the bad one)."""
    try:
        return FEATURE_EXTRACTION.validate_parameters(raw)
    except ParameterError as exc:
        raise ServerError(str(exc)) from None


def pooled(model_id: str, result: Any) -> np.ndarray:
    vector = np.asarray(result, dtype=np.float32)
    if vector.ndim != 1:
        raise ServerError(
            f"Model {model_id} gives one vector per token, not one per text: it is not a sentence-embedding "
            "model (a sentence-transformers folder has the pooling these routes need). Its token vectors are "
            f"at /models/{model_id}/pipeline/feature-extraction.",
            "not_supported",
        )
    return vector


async def embed(
    request: Request, state: AppState, model_id: str, texts: Sequence[str], parameters: Mapping[str, Any]
) -> list[np.ndarray]:
    """One float32 vector per text, as the model makes them with `parameters` (checked ones)."""
    work = state.engine.predict(
        model_id,
        "feature-extraction",
        list(texts),
        dict(parameters),
        wait_for_model=waits_for_model(request),
    )
    results = await unless_disconnected(request, work, state.settings.request_timeout_s)
    vectors = [pooled(model_id, r) for r in results]
    dims = parameters.get("dimensions")
    if dims is not None and vectors and len(vectors[0]) < dims:  # not every backend checks it
        raise ServerError(
            f"`dimensions` is {dims}, but model {model_id}'s vectors have {len(vectors[0])}.", "validation"
        )
    return vectors


async def similarities(
    request: Request,
    state: AppState,
    model_id: str,
    source: str,
    texts: Sequence[str],
    parameters: Mapping[str, Any],
) -> list[float]:
    """The cosine of `source` with each text.

    From the model's normalised embeddings (TEI's way, so `parameters` such as `truncate` apply), or from its
    sentence-similarity task when it serves that and no feature-extraction.
    """
    tasks = state.engine.entry(model_id).tasks
    if "feature-extraction" in tasks or "sentence-similarity" not in tasks:
        vectors = await embed(request, state, model_id, [source, *texts], {**parameters, "normalize": True})
        return [float(v @ vectors[0]) for v in vectors[1:]]
    if parameters:
        raise ServerError(
            f"Model {model_id} serves sentence-similarity without feature-extraction, which takes no "
            f"parameters; got {sorted(parameters)}."
        )
    work = state.engine.predict(
        model_id,
        "sentence-similarity",
        [{"source_sentence": source, "sentences": list(texts)}],
        {},
        wait_for_model=waits_for_model(request),
    )
    [scores] = await unless_disconnected(request, work, state.settings.request_timeout_s)
    return [float(s) for s in scores]
