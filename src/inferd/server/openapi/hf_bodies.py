"""The HF Inference API request bodies, one per task, derived from the task registry (inferd.tasks).

Each schema states what `inferd.server.payload.extract` accepts for the task, no more and no less: the input
kind decides the shape of `inputs` (and the top-level aliases some clients send), the task's parameters give
`parameters` with their types, bounds and enums. Media travel as base64 in JSON (formats `base64-image`,
`base64-audio`: any base64 of a file PIL or libsndfile reads) or as the raw body (see `media_bodies`).
"""

from __future__ import annotations

from typing import Any

from ...tasks import InputKind, Task

# A text the server takes: a string with something in it besides white space. Python's str.strip() also
# strips \x1c-\x1f and \x85, which ECMA's and Rust's \s do not: they are named so that both agree.
# No NUL anywhere either (payload.py refuses it: C libraries under the models stop reading at it).
TEXT: dict[str, Any] = {"type": "string", "pattern": r"^[^\x00]*[^\s\x1c-\x1f\x85\x00][^\x00]*$"}
TEXTS: dict[str, Any] = {"type": "array", "items": TEXT, "minItems": 1}
IMAGE: dict[str, Any] = {
    "type": "string",
    "format": "base64-image",
    "pattern": r"\S",
    "description": "An image file (PNG, JPEG, WebP...) in base64, or a data: URL; never a URL to fetch.",
}
AUDIO: dict[str, Any] = {
    "type": "string",
    "format": "base64-audio",
    "pattern": r"\S",
    "description": "An audio file (WAV, FLAC, OGG) in base64, or a data: URL; never a URL to fetch.",
}
# Cells are strings or numbers (booleans and null read as text); every column has the same length.
TABLE: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {
        "type": "array",
        "items": {"type": ["string", "number", "boolean", "null"]},
    },
    "description": "{column: [cell, ...]}, every column the same length.",
}
OPTIONS: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "wait_for_model": {
                    "type": ["boolean", "null"],
                    "description": "Wait for the model to load (the default); false: a 503 with estimated_time at once.",
                },
                "use_cache": {
                    "type": ["boolean", "null"],
                    "description": "Accepted; answers are not cached.",
                },
            },
        },
        {"type": "null"},
    ]
}


def _object(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _pair(
    first: str, first_schema: dict[str, Any], second: str, second_schema: dict[str, Any], also: Any = None
) -> dict[str, Any]:
    """Two named inputs, inside `inputs` (the HF shape) or at the top level (older clients). `also`: what
    else `inputs` may hold next to top-level fields (huggingface_hub's VQA repeats the image there)."""
    inner = _object({first: first_schema, second: second_schema}, first, second)
    return {
        "properties": {
            "inputs": inner if also is None else {"anyOf": [inner, also]},
            first: first_schema,
            second: second_schema,
        },
        "anyOf": [
            {"properties": {"inputs": {"type": "object"}}, "required": ["inputs"]},
            {"required": [first, second]},
        ],
    }


def _inputs(task: Task) -> dict[str, Any]:
    """The `properties` (and `anyOf` of required fields) the input kind adds to the body."""
    kind = task.input_kind
    if kind is InputKind.TEXT:
        inputs = TEXT if task.single_input else {"anyOf": [TEXT, TEXTS]}
        return {"properties": {"inputs": inputs}, "required": ["inputs"]}
    if kind in (InputKind.IMAGE, InputKind.AUDIO):
        media = IMAGE if kind is InputKind.IMAGE else AUDIO
        return {
            "properties": {"inputs": media, kind.value: media},
            "anyOf": [{"required": ["inputs"]}, {"required": [kind.value]}],
        }
    if kind is InputKind.IMAGE_QUESTION:
        return _pair("image", IMAGE, "question", TEXT, also=IMAGE)
    if kind is InputKind.QUESTION_CONTEXT:
        return _pair("question", TEXT, "context", TEXT)
    if kind is InputKind.TABLE_QUERY:
        return _pair("table", TABLE, "query", TEXT)
    if kind is InputKind.TABLE:
        return {
            "properties": {"inputs": _object({"data": TABLE}, "data"), "table": TABLE},
            "anyOf": [{"required": ["inputs"]}, {"required": ["table"]}],
        }
    if kind is InputKind.SENTENCES:
        inputs = _object({"source_sentence": TEXT, "sentences": TEXTS}, "source_sentence", "sentences")
        return {"properties": {"inputs": inputs}, "required": ["inputs"]}
    history = {"anyOf": [TEXTS, {"type": "array", "maxItems": 0}, {"type": "null"}]}
    conversation = _object(
        {"text": TEXT, "past_user_inputs": history, "generated_responses": history}, "text"
    )
    return {"properties": {"inputs": conversation}, "required": ["inputs"]}


def task_request_schema(task: Task, *, stream_parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of `task`'s routes. Keys besides these are refused (400), as `payload` does.

    `stream_parameters` (text-generation) is the schema of `parameters` when the body sets `"stream": true`.
    """
    shape = _inputs(task)
    needs_parameters = any(p.required for p in task.parameters)
    parameters = task.parameters_schema()
    if not needs_parameters:
        parameters = {"anyOf": [parameters, {"type": "null"}]}
    properties: dict[str, Any] = {**shape["properties"], "parameters": parameters, "options": OPTIONS}
    if task.top_level_parameters:  # TEI-style: the parameters may sit next to `inputs`
        properties.update({p.name: p.json_schema() for p in task.parameters})
    schema: dict[str, Any] = {
        "type": "object",
        "title": task.name,
        "description": task.summary,
        "properties": properties,
        "additionalProperties": False,
    }
    required = [*shape.get("required", ()), *(["parameters"] if needs_parameters else [])]
    if required:
        schema["required"] = required
    if "anyOf" in shape:
        schema["anyOf"] = shape["anyOf"]  # `inputs`, or its fields at the top level; both must be valid
    if stream_parameters is not None:
        properties["stream"] = {"type": "boolean", "description": "Answer with server-sent events (TGI's)."}
        streaming = {"properties": {"stream": {"const": True}}, "required": ["stream"]}
        schema["if"] = streaming
        schema["then"] = {"properties": {"parameters": {"anyOf": [stream_parameters, {"type": "null"}]}}}
    return schema


def bare_inputs_schema(task: Task) -> dict[str, Any] | None:
    """A bare JSON value the server takes as `inputs` (servers.md §1.2): text tasks and base64 media."""
    kind = task.input_kind
    if kind is InputKind.TEXT:
        return TEXT if task.single_input else {"anyOf": [TEXT, TEXTS]}
    if kind is InputKind.IMAGE:
        return IMAGE
    if kind is InputKind.AUDIO:
        return AUDIO
    return None


def media_bodies(task: Task) -> dict[str, Any]:
    """The raw-bytes bodies a media task takes besides JSON, by content type."""
    binary = {"type": "string", "format": "binary"}
    if task.input_kind is InputKind.IMAGE:
        return {"image/png": {"schema": binary}, "image/jpeg": {"schema": binary}}
    if task.input_kind is InputKind.AUDIO:
        return {"audio/wav": {"schema": binary}, "audio/flac": {"schema": binary}}
    return {}
