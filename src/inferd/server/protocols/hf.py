"""The HF Inference API task routes: POST /models/{id}, /pipeline/{task}/{id}, /models/{id}/pipeline/{task}."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...catalogue import ModelEntry
from ...tasks import InputKind
from .. import payload, results
from ..errors import ServerError
from ..hub import no_model_message
from ..limits import check_client_batch, read_body, unless_disconnected
from ..metrics import Observation
from ..respond import JSONResponse
from ..state import AppState, endpoint
from ..waiting import waits_for_model
from . import tgi

# The input kinds payload.decode_media turns from bytes into images/audio; the others have nothing to decode.
_MEDIA_INPUTS = (InputKind.IMAGE, InputKind.AUDIO, InputKind.IMAGE_QUESTION)
# Tasks whose answers hold media to encode (PNG, FLAC...): always encoded in a worker thread.
_MEDIA_RESULTS = {"text-to-image", "image-to-image", "text-to-speech", "image-segmentation", "audio-to-audio"}
# Up to this many values, making results JSON-ready takes microseconds: cheaper on the loop than a thread hop.
_SMALL_RESULTS = 4096


def _values(x: Any) -> int:
    """About how many values `x` holds (nested lists are taken as regular, like arrays)."""
    if isinstance(x, np.ndarray):
        return int(x.size)
    if isinstance(x, (list, tuple)):
        return len(x) * max(1, _values(x[0])) if x else 0
    if isinstance(x, dict):
        return sum(_values(v) for v in x.values())
    return 1


def _small(task: str, answers: list[Any]) -> bool:
    if task in _MEDIA_RESULTS:
        return False
    total = 0
    for answer in answers:
        total += _values(answer)
        if total > _SMALL_RESULTS:
            return False
    return True


def approximation_headers(approximations: dict[str, str] | object, task: str) -> dict[str, str]:
    note = approximations.get(task) if isinstance(approximations, dict) else None
    if not note:
        return {}
    return {"x-inferd-approximation": str(note).encode("ascii", "replace").decode("ascii")}


def _entry(state: AppState, model_id: str, task: str | None) -> ModelEntry:
    try:
        return state.engine.entry(model_id)
    except ServerError as exc:
        # The route names a task no model here serves: say how to add one rather than only "not found".
        if (
            exc.error_type == "not_found"
            and task
            and not any(task in e.tasks for e in state.engine.entries())
        ):
            raise ServerError(no_model_message(task), "not_found") from None
        raise


@endpoint()
async def inference(request: Request, state: AppState, obs: Observation) -> Response:
    model_id = request.path_params["model_id"]
    entry = _entry(state, model_id, request.path_params.get("task"))
    data = await read_body(request, state.body_limit(entry))
    body = payload.parse_body(data, request.headers.get("content-type"))
    req = payload.resolve(model_id, entry.tasks, request.path_params.get("task"), body)
    req.wait_for_model = waits_for_model(request, req.wait_for_model)
    count, where = payload.input_count(req)
    check_client_batch(count, state.settings.max_client_batch_size, where)
    task = req.task.name
    obs.task = task
    if task == "text-generation":
        return await tgi.compat(request, state, obs, model_id, req)
    if req.task.input_kind in _MEDIA_INPUTS:
        await run_in_threadpool(payload.decode_media, req, state.settings.media_limits)
    work = state.engine.predict(model_id, task, req.inputs, req.parameters, wait_for_model=req.wait_for_model)
    answers = await unless_disconnected(request, work, state.settings.request_timeout_s)
    if not isinstance(answers, list) or len(answers) != len(req.inputs):
        raise ServerError(
            f"The engine answered {len(answers)} results for {len(req.inputs)} inputs.", "internal"
        )
    legacy = results.legacy_client(request.headers.get("user-agent"))
    encode = functools.partial(results.encode, legacy_zero_shot=legacy)
    accept = request.headers.get("accept")
    if _small(task, answers):
        encoded = encode(task, answers, req.batched, accept)
    else:
        encoded = await run_in_threadpool(encode, task, answers, req.batched, accept)
    headers = obs.headers(state.settings.compute_type)
    headers.update(approximation_headers(dict(entry.approximations), task))
    if req.characters:
        headers["x-compute-characters"] = str(req.characters)
    if encoded.data is not None:
        return Response(encoded.data, media_type=encoded.media_type, headers=headers)
    return JSONResponse(encoded.content, headers=headers)
