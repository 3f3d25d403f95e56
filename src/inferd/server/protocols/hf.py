"""The HF Inference API task routes: POST /models/{id}, /pipeline/{task}/{id}, /models/{id}/pipeline/{task}."""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...catalogue import ModelEntry
from .. import payload, results
from ..errors import ServerError
from ..hub import no_model_message
from ..limits import read_body, unless_disconnected
from ..metrics import Observation
from ..respond import JSONResponse
from ..state import AppState, endpoint
from . import tgi


def wants_to_wait(request: Request, options_wait: bool) -> bool:
    return options_wait or request.headers.get("x-wait-for-model", "").lower() in ("1", "true", "yes")


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
    req.wait_for_model = wants_to_wait(request, req.wait_for_model)
    task = req.task.name
    obs.task = task
    if task == "text-generation":
        return await tgi.compat(request, state, obs, model_id, req)
    await run_in_threadpool(payload.decode_media, req)
    work = state.engine.predict(model_id, task, req.inputs, req.parameters, wait_for_model=req.wait_for_model)
    answers = await unless_disconnected(request, work, state.settings.request_timeout_s)
    if not isinstance(answers, list) or len(answers) != len(req.inputs):
        raise ServerError(
            f"The engine answered {len(answers)} results for {len(req.inputs)} inputs.", "internal"
        )
    legacy = results.legacy_client(request.headers.get("user-agent"))
    encode = functools.partial(results.encode, legacy_zero_shot=legacy)
    encoded = await run_in_threadpool(encode, task, answers, req.batched, request.headers.get("accept"))
    headers = obs.headers(state.settings.compute_type)
    headers.update(approximation_headers(dict(entry.approximations), task))
    if req.characters:
        headers["x-compute-characters"] = str(req.characters)
    if encoded.data is not None:
        return Response(encoded.data, media_type=encoded.media_type, headers=headers)
    return JSONResponse(encoded.content, headers=headers)
