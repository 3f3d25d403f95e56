"""The answers each kind of route documents: its success content and its errors, with their envelopes.

Errors are `{"error": str, "error_type": str}` (servers/errors.py, written once in respond.py); the OpenAI
routes wrap the message as OpenAI's SDKs read it, `{"error": {"message", "type", "param", "code"}}`, with the
same `error_type` beside it. A 5xx is the server's own failure, never the request's: a request the schema
refuses is a 400 (or 422 where TGI says so), one that fits the schema but that the model cannot take (its
context length, its table's columns, a parameter its runtime lacks) is a 400 or 422 naming why.
"""

from __future__ import annotations

from typing import Any

ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "error_type": {"type": "string"},
        "estimated_time": {"type": "number", "description": "Seconds until the model is loaded (503)."},
    },
    "required": ["error", "error_type"],
}
OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type"],
        },
        "error_type": {"type": "string"},
    },
    "required": ["error", "error_type"],
}
# Why each status happens, as the description of its response.
_WHY = {
    "400": "The request breaks this schema, or the model cannot take it (the message says which field). "
    "`error_type` `not_supported`: the model does not serve this route's task.",
    "401": "The server requires an API key (`Authorization: Bearer <key>`) and this one is missing or wrong.",
    "404": "No such model on this server (or the route's default model is not installed).",
    "405": "The route exists for another method (see the `Allow` header).",
    "413": "The body is larger than the server's limit (`--max-json-bytes`, `--max-media-bytes`).",
    "422": "The model refused the inputs or parameters (`error_type` `validation`, TGI's words).",
    "424": "The model failed while generating (`error_type` `generation`).",
    "429": "The model's queue is full (`error_type` `overloaded`); retry after `Retry-After`.",
    "503": "The model is loading (`error_type` `model_loading`, with `estimated_time` and `Retry-After`).",
    "504": "The request took longer than the server's `--request-timeout`.",
}
INFERENCE_ERRORS = ("400", "401", "404", "405", "413", "422", "429", "503", "504")
GENERATION_ERRORS = (*INFERENCE_ERRORS, "424")
LOOKUP_ERRORS = ("404", "405")


def errors(statuses: tuple[str, ...], *, openai: bool = False) -> dict[str, Any]:
    ref = "#/components/schemas/OpenAIError" if openai else "#/components/schemas/Error"
    content = {"application/json": {"schema": {"$ref": ref}}}
    return {status: {"description": _WHY[status], "content": content} for status in statuses}


def json_ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {}}}}


def ok(description: str, *media_types: str) -> dict[str, Any]:
    return {"description": description, "content": {m: {"schema": {}} for m in media_types}}


def sse_or_json(description: str) -> dict[str, Any]:
    """Routes that stream when the body asks for it."""
    return ok(description, "application/json", "text/event-stream")
