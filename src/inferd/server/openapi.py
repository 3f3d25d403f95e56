"""The OpenAPI schema, built from the task registry: one request schema per task (parameters_schema included)."""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..tasks import TASKS, InputKind, Task

_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_B64 = {"type": "string", "format": "byte", "description": "base64 content (the server never fetches URLs)"}
_TABLE = {"type": "object", "additionalProperties": _STRS, "description": "{column: [cells]}, equal lengths"}

_INPUTS: dict[InputKind, dict[str, Any]] = {
    InputKind.TEXT: {"oneOf": [_STR, _STRS]},
    InputKind.IMAGE: _B64,
    InputKind.AUDIO: _B64,
    InputKind.TABLE: {"type": "object", "properties": {"data": _TABLE}},
    InputKind.IMAGE_QUESTION: {"type": "object", "properties": {"image": _B64, "question": _STR}},
    InputKind.QUESTION_CONTEXT: {"type": "object", "properties": {"question": _STR, "context": _STR}},
    InputKind.TABLE_QUERY: {"type": "object", "properties": {"table": _TABLE, "query": _STR}},
    InputKind.SENTENCES: {"type": "object", "properties": {"source_sentence": _STR, "sentences": _STRS}},
    InputKind.CONVERSATION: {
        "type": "object",
        "properties": {"text": _STR, "past_user_inputs": _STRS, "generated_responses": _STRS},
    },
}
_OPTIONS = {
    "type": "object",
    "properties": {
        "wait_for_model": {
            "type": "boolean",
            "description": "Wait for the model to load (the default); false: a 503 with estimated_time at once.",
        }
    },
}
_ERROR = {
    "type": "object",
    "properties": {"error": _STR, "error_type": _STR, "estimated_time": {"type": "number"}},
    "required": ["error", "error_type"],
}


def _schema_name(task: Task) -> str:
    return "".join(w.capitalize() for w in task.name.split("-")) + "Request"


def task_request_schema(task: Task) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "inputs": _INPUTS[task.input_kind],
        "parameters": task.parameters_schema(),
        "options": _OPTIONS,
    }
    if task.input_kind is InputKind.TABLE:
        properties["table"] = _TABLE
    if task.name == "text-generation":
        properties["stream"] = {"type": "boolean"}
    return {"type": "object", "title": task.name, "description": task.summary, "properties": properties}


def _task_body(task: Task) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{_schema_name(task)}"}}
    }
    if task.input_kind is InputKind.IMAGE:
        content["image/*"] = {"schema": {"type": "string", "format": "binary"}}
    if task.input_kind is InputKind.AUDIO:
        content["audio/*"] = {"schema": {"type": "string", "format": "binary"}}
    return {"required": True, "content": content}


def _responses(task: Task | None = None) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "The task's answer"}
    if task is not None and task.returns_image:
        ok["content"] = {"image/png": {}, "image/jpeg": {}}
    elif task is not None and task.returns_audio and task.name == "text-to-speech":
        ok["content"] = {"audio/flac": {}, "audio/wav": {}}
    error = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return {"200": ok, "4XX": error, "5XX": error}


_MODEL = {"name": "model_id", "in": "path", "required": True, "schema": _STR}
# (path, summary, also under /models/{model_id}) of the OpenAI and TEI routes besides chat.
_OTHER_POSTS = (
    ("/v1/completions", "OpenAI legacy completions (text-generation models)", True),
    ("/v1/embeddings", "OpenAI embeddings (float or base64)", True),
    ("/embeddings", "OpenAI embeddings (TEI's alias of /v1/embeddings)", False),
    ("/embed", "TEI: one vector per input, [[float]]", True),
    ("/similarity", "TEI: cosine of the source sentence with each sentence, [float]", True),
    ("/predict", "TEI: text classification, [{score, label}]", True),
    (
        "/rerank",
        "TEI: texts ranked by relevance to the query, [{index, score, text?}] (embedding cosine: approximate)",
        True,
    ),
)


def build_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/models/{model_id}": {
            "post": {
                "summary": "Run a model: the task is the model's (by the body's shape when it serves several)",
                "parameters": [_MODEL],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": f"#/components/schemas/{_schema_name(t)}"}
                                    for t in TASKS.values()
                                ]
                            }
                        },
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                    }
                },
                "responses": _responses(),
            }
        }
    }
    for task in TASKS.values():
        paths[f"/models/{{model_id}}/pipeline/{task.name}"] = {
            "post": {
                "summary": task.summary,
                "operationId": task.python_name,
                "tags": [task.name],
                "parameters": [_MODEL],
                "requestBody": _task_body(task),
                "responses": _responses(task),
            }
        }
    tgi_body = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TextGenerationRequest"}}}
    }
    for suffix, summary in (("generate", "TGI generate"), ("generate_stream", "TGI generate, SSE stream")):
        paths[f"/models/{{model_id}}/{suffix}"] = {
            "post": {
                "summary": summary,
                "parameters": [_MODEL],
                "requestBody": tgi_body,
                "responses": _responses(),
            }
        }
    chat = {"post": {"summary": "OpenAI chat completions", "responses": _responses()}}
    paths["/v1/chat/completions"] = chat
    paths["/models/{model_id}/v1/chat/completions"] = {"post": {**chat["post"], "parameters": [_MODEL]}}
    for path, summary, under_model in _OTHER_POSTS:
        post: dict[str, Any] = {"summary": summary, "responses": _responses()}
        paths[path] = {"post": post}
        if under_model:
            paths[f"/models/{{model_id}}{path}"] = {"post": {**post, "parameters": [_MODEL]}}
    for path, summary in (
        ("/v1/models", "OpenAI model list"),
        ("/api/tasks", "Tasks served, with the default model of each (Hub shape)"),
        ("/api/models/{model_id}", "A model's pipeline_tag and tags (Hub shape)"),
        ("/status/{model_id}", "Whether a model is loaded"),
        ("/framework/{framework}", "Models served by a backend"),
        ("/health", "200 when the preloaded models are loaded; 503 while they load or if one failed"),
        ("/info", "TGI-like server info"),
        ("/metrics", "Prometheus metrics"),
    ):
        get: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "OK"}}}
        if "{model_id}" in path:
            get["parameters"] = [_MODEL]
        if "{framework}" in path:
            get["parameters"] = [{"name": "framework", "in": "path", "required": True, "schema": _STR}]
        paths[path] = {"get": get}
    schemas = {_schema_name(t): task_request_schema(t) for t in TASKS.values()}
    schemas["Error"] = _ERROR
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "inferd",
            "version": __version__,
            "description": "HF Inference API, TGI and OpenAI routes.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


SWAGGER_HTML = """<!doctype html>
<html><head><title>inferd API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""
