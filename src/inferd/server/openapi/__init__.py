"""The server's OpenAPI 3.1 schema: every route, with the request constraints the server enforces.

    schema = build_openapi(engine.entries(), api_key=True)

Request bodies come from the task registry (hf_bodies.py) and from the tasks the TGI, TEI and OpenAI routes
carry (protocol_bodies.py), so the schema and the server's validation read the same limits. Model ids are
enums of the served models that can answer each route (the pipeline route of a task lists the models serving
that task); models found later in the local Hugging Face cache are served too, though the schema built at
start does not list them. The bare model URL, `POST /models/<id>`, is listed once per served model with the
body of that model's tasks, since what it accepts depends on the model.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ..._version import __version__
from ...catalogue import ModelEntry
from ...tasks import CHAT_COMPLETION, TASKS, Task
from ...tasks._base import NO_NUL
from ..protocols.openai import PLACEHOLDERS
from ..protocols.tgi import STREAMING_TEXT_GENERATION
from . import protocol_bodies as bodies
from .hf_bodies import bare_inputs_schema, media_bodies, task_request_schema
from .responses import (
    ERROR,
    GENERATION_ERRORS,
    INFERENCE_ERRORS,
    LOOKUP_ERRORS,
    OPENAI_ERROR,
    errors,
    json_ok,
    ok,
    sse_or_json,
)

_IMAGES = ("image/png", "image/jpeg", "image/webp")
_AUDIO = ("audio/flac", "audio/wav")
_PUBLIC: list[Any] = []  # `security: []`: no API key, even on a server that has one


def _schema_name(task: Task) -> str:
    return "".join(w.capitalize() for w in task.name.split("-")) + "Request"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _model_param(models: Sequence[str], what: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(models)} if models else {"type": "string"}
    return {
        "name": "model_id",
        "in": "path",
        "required": True,
        "description": f"{what} (ids hold a `/`, sent as it is or as %2F).",
        "schema": schema,
    }


def _serving(entries: Sequence[ModelEntry], *tasks: str) -> list[str]:
    return [e.model_id for e in entries if any(t in e.tasks for t in tasks)]


def _task_success(task: Task) -> dict[str, Any]:
    if task.returns_image:
        return ok("The image", *_IMAGES)
    if task.name == "text-to-speech":
        return ok("The audio", *_AUDIO)
    if task.name == "text-generation":
        return sse_or_json("[{generated_text}], or server-sent events when `stream` is true")
    return json_ok(f"The {task.name} result")


def _task_content(task: Task) -> dict[str, Any]:
    # a bare value has no `parameters`: not for tasks that need some (zero-shot's labels)
    bare = None if any(p.required for p in task.parameters) else bare_inputs_schema(task)
    schema = {"anyOf": [_ref(_schema_name(task)), bare]} if bare is not None else _ref(_schema_name(task))
    return {"application/json": {"schema": schema}, **({} if bare is None else media_bodies(task))}


def _post(summary: str, content: dict[str, Any], responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": content},
            "responses": responses,
            **extra,
        }
    }


def _hf_paths(entries: Sequence[ModelEntry]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for task in TASKS.values():
        models = _serving(entries, task.name)
        post = _post(
            task.summary,
            _task_content(task),
            {"200": _task_success(task), **errors(GENERATION_ERRORS)},
            operationId=task.python_name,
            tags=[task.name],
            parameters=[_model_param(models, f"A model serving {task.name}")],
        )
        paths[f"/models/{{model_id}}/pipeline/{task.name}"] = post
        if task.pipeline_route:  # the hosted API's /pipeline/{task}/{model} form
            paths[f"/pipeline/{task.name}/{{model_id}}"] = {
                "post": {**post["post"], "operationId": f"{task.python_name}_pipeline"}
            }
    for entry in entries:
        tasks = [TASKS[t] for t in entry.tasks if t in TASKS]
        if not tasks:
            continue
        contents = [_task_content(task) for task in tasks]
        content: dict[str, Any] = {}
        for one in contents:
            content.update(one)
        content["application/json"] = {
            "schema": {"anyOf": [c["application/json"]["schema"] for c in contents]}
        }
        success = {m for t in tasks for m in _task_success(t)["content"]}
        paths[f"/models/{entry.model_id}"] = _post(
            f"Run {entry.model_id} ({', '.join(t.name for t in tasks)}): the first of its tasks the body fits",
            content,
            {"200": ok("The task's answer", *sorted(success)), **errors(GENERATION_ERRORS)},
            tags=["models"],
        )
    return paths


def _tgi_paths(entries: Sequence[ModelEntry]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    models = _serving(entries, "text-generation")
    for suffix, stream in (("generate", False), ("generate_stream", True)):
        body = {
            "application/json": {"schema": _ref("GenerateStreamRequest" if stream else "GenerateRequest")}
        }
        success = ok("Server-sent events", "text/event-stream") if stream else json_ok("{generated_text}")
        responses = {"200": success, **errors(GENERATION_ERRORS)}
        summary = f"TGI {suffix}"
        paths[f"/{suffix}"] = _post(
            f"{summary} (the default text-generation model)", body, responses, tags=["tgi"]
        )
        paths[f"/models/{{model_id}}/{suffix}"] = _post(
            summary,
            body,
            responses,
            tags=["tgi"],
            parameters=[_model_param(models, "A text-generation model")],
        )
    return paths


# TEI route -> (body schema name, tasks whose models answer it, summary)
_TEI = {
    "embed": ("EmbedRequest", ("feature-extraction",), "TEI: one vector per input, [[float]]"),
    "similarity": (
        "SimilarityRequest",
        ("sentence-similarity", "feature-extraction"),
        "TEI: cosine of the source sentence with each sentence, [float]",
    ),
    "predict": ("PredictRequest", ("text-classification",), "TEI: text classification, [{score, label}]"),
    "rerank": (
        "RerankRequest",
        ("feature-extraction", "sentence-similarity"),
        "TEI: texts ranked by relevance to the query (embedding cosine), [{index, score, text?}]",
    ),
}


def _tei_paths(entries: Sequence[ModelEntry]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route, (name, tasks, summary) in _TEI.items():
        body = {"application/json": {"schema": _ref(name)}}
        responses = {"200": json_ok(summary), **errors(INFERENCE_ERRORS)}
        paths[f"/{route}"] = _post(f"{summary} (the default model)", body, responses, tags=["tei"])
        paths[f"/models/{{model_id}}/{route}"] = _post(
            summary,
            body,
            responses,
            tags=["tei"],
            parameters=[_model_param(_serving(entries, *tasks), f"A model serving {' or '.join(tasks)}")],
        )
    return paths


def _openai_paths(entries: Sequence[ModelEntry]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, request schemas) of the OpenAI routes; `model` enums list the models that can answer."""
    chat_models = _serving(entries, "text-generation", CHAT_COMPLETION)
    embed_models = _serving(entries, "feature-extraction")
    routes = (
        ("chat/completions", "ChatCompletion", bodies.chat_request, chat_models, "OpenAI chat completions"),
        ("completions", "Completion", bodies.completion_request, chat_models, "OpenAI legacy completions"),
        ("embeddings", "Embeddings", bodies.embeddings_request, embed_models, "OpenAI embeddings"),
    )
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for route, name, request, models, summary in routes:
        schemas[f"{name}Request"] = request(models, PLACEHOLDERS)
        schemas[f"Model{name}Request"] = request(None, PLACEHOLDERS)
        streams = route != "embeddings"
        success = sse_or_json(summary) if streams else json_ok(summary)
        statuses = GENERATION_ERRORS if streams else INFERENCE_ERRORS
        responses = {"200": success, **errors(statuses, openai=True)}
        top = _post(
            summary, {"application/json": {"schema": _ref(f"{name}Request")}}, responses, tags=["openai"]
        )
        paths[f"/v1/{route}"] = top
        if route == "embeddings":
            paths["/embeddings"] = _post(
                f"{summary} (TEI's alias)", top["post"]["requestBody"]["content"], responses, tags=["openai"]
            )
        paths[f"/models/{{model_id}}/v1/{route}"] = _post(
            f"{summary} (the path names the model; `model` is ignored)",
            {"application/json": {"schema": _ref(f"Model{name}Request")}},
            responses,
            tags=["openai"],
            parameters=[_model_param(models, "A model for this route")],
        )
    return paths, schemas


def _get(
    summary: str, success: dict[str, Any], statuses: tuple[str, ...] = ("405",), **extra: Any
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": success, **errors(statuses)},
            "security": _PUBLIC,
            **extra,
        }
    }


def _read_paths(entries: Sequence[ModelEntry], docs: bool) -> dict[str, Any]:
    model = [_model_param([e.model_id for e in entries], "A model of this server")]
    ready = errors(("503",))["503"]
    paths = {
        "/health": _get(
            "200 when the preloaded models are loaded; 503 while they load or if one failed", json_ok("ok")
        ),
        "/metrics": _get("Prometheus metrics", ok("Prometheus text format", "text/plain")),
        "/info": _get("TGI-like server info", json_ok("info")),
        "/openapi.json": _get("This schema", json_ok("OpenAPI 3.1")),
        "/api/tasks": _get("Every task, with the default model of each (Hub shape)", json_ok("tasks")),
        "/api/models": _get("The models of this server (Hub shape)", json_ok("models")),
        "/api/models/{model_id}": _get(
            "A model's pipeline_tag and tags (Hub shape)", json_ok("model"), LOOKUP_ERRORS, parameters=model
        ),
        "/status/{model_id}": _get(
            "Whether a model is loaded", json_ok("status"), LOOKUP_ERRORS, parameters=model
        ),
        "/models/{model_id}/info": _get(
            "TGI-like info for a model", json_ok("info"), LOOKUP_ERRORS, parameters=model
        ),
        "/models/{model_id}/health": _get(
            "200 unless the model failed to load (503)", json_ok("ok"), LOOKUP_ERRORS, parameters=model
        ),
        "/framework/{framework}": _get(
            "Models served by a backend (`all`: every model); [] for a backend this server does not have",
            json_ok("[{model_id, task, compute_type, framework}]"),
            parameters=[{"name": "framework", "in": "path", "required": True, "schema": {"type": "string"}}],
        ),
        "/v1/models": _get("OpenAI model list", json_ok("models")),
    }
    paths["/health"]["get"]["responses"]["503"] = ready
    paths["/models/{model_id}/health"]["get"]["responses"]["503"] = ready
    if docs:
        paths["/docs"] = _get("Swagger UI over this schema", ok("HTML page", "text/html"))
    for entry in entries:  # GET on the bare model URL: its status (the POST is under _hf_paths)
        paths.setdefault(f"/models/{entry.model_id}", {}).update(
            _get(f"Whether {entry.model_id} is loaded", json_ok("status"))
        )
    return paths


def build_openapi(
    entries: Sequence[ModelEntry], *, api_key: bool = False, docs: bool = True
) -> dict[str, Any]:
    """The schema of a server serving `entries`; `api_key`: inference routes need a bearer token."""
    entries = list(entries)
    paths: dict[str, Any] = {}
    openai_paths, openai_schemas = _openai_paths(entries)
    for part in (_hf_paths(entries), _tgi_paths(entries), _tei_paths(entries), openai_paths):
        for path, item in part.items():
            paths.setdefault(path, {}).update(item)
    for path, item in _read_paths(entries, docs).items():
        paths.setdefault(path, {}).update(item)
    generation = TASKS["text-generation"]
    schemas: dict[str, Any] = {
        _schema_name(t): task_request_schema(
            t,
            stream_parameters=STREAMING_TEXT_GENERATION.parameters_schema() if t is generation else None,
        )
        for t in TASKS.values()
    }
    schemas.update(
        {
            "GenerateRequest": bodies.tgi_request(stream=False),
            "GenerateStreamRequest": bodies.tgi_request(stream=True),
            "EmbedRequest": bodies.TEI_EMBED,
            "SimilarityRequest": bodies.TEI_SIMILARITY,
            "PredictRequest": bodies.TEI_PREDICT,
            "RerankRequest": bodies.TEI_RERANK,
            **openai_schemas,
            "Error": ERROR,
            "OpenAIError": OPENAI_ERROR,
        }
    )
    schema: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "inferd",
            "version": __version__,
            "description": "HF Inference API, TGI, TEI and OpenAI routes over the models of this server.",
        },
    }
    paths, schemas = copy.deepcopy(paths), copy.deepcopy(schemas)  # parts are shared constants: edit copies
    seen: set[str] = set()
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                _refuse_nul(operation["requestBody"], schemas, seen)
    schema["paths"], schema["components"] = paths, {"schemas": schemas}
    if api_key:
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"bearer": []}]
    return schema


# payload.py refuses a NUL character in any string or key of a request (400): say so wherever a request has text.
# (Not on property names: `propertyNames` made schemathesis's coverage phase ten times slower.)
_FIXED = ("enum", "const", "format", "pattern", "contentEncoding", "contentMediaType")


def _refuse_nul(node: Any, schemas: dict[str, Any], seen: set[str]) -> None:
    """Add NO_NUL to the free-text strings of a request body's schema, in place,
    following $refs into `schemas` once each (request schemas are not shared with responses)."""
    if isinstance(node, list):
        for child in node:
            _refuse_nul(child, schemas, seen)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen and name in schemas:
            seen.add(name)
            _refuse_nul(schemas[name], schemas, seen)
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "string" in kinds and not any(k in node for k in _FIXED):
        node["pattern"] = NO_NUL
    for key, child in node.items():
        if key not in ("enum", "const", "default", "example", "examples", "propertyNames"):
            _refuse_nul(child, schemas, seen)


SWAGGER_HTML = """<!doctype html>
<html><head><title>inferd API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""
