"""The HF Inference API request contract, sans I/O: a body (bytes + content type) -> task, inputs, parameters.

Accepted shapes (servers.md §1.2, §1.6): JSON `{"inputs", "parameters", "options"}` with the extra top-level keys
some tasks use (`table`, `query`, `question`, `image`, `context`, TEI-style feature-extraction parameters,
`stream` for text generation); a bare JSON value; a raw UTF-8 string; raw image/audio bytes; JSON with base64
media. Everything a caller can get wrong is a ServerError naming the field; media stay undecoded bytes here
(see `decode_media`, run in a worker thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..tasks import TASKS, InputKind, ParameterError, Task
from . import media
from .errors import ServerError
from .media_limits import MediaLimits, decode_audio, decode_image

_MEDIA_KINDS = (InputKind.IMAGE, InputKind.AUDIO)
_BINARY_TYPES = ("image/", "audio/", "video/", "application/octet-stream")
# Top-level keys each input kind may carry besides inputs/parameters/options.
_EXTRA_KEYS = {
    InputKind.IMAGE: {"image"},
    InputKind.AUDIO: {"audio"},
    InputKind.IMAGE_QUESTION: {"image", "question"},
    InputKind.QUESTION_CONTEXT: {"question", "context"},
    InputKind.TABLE: {"table"},
    InputKind.TABLE_QUERY: {"table", "query"},
}
# JSON nesting a request may have: real bodies (chat messages with content parts, tables) use under 8.
MAX_JSON_DEPTH = 64
# The `options` clients send (huggingface_hub, huggingface.js); others are ignored, as the hosted API does.
_OPTIONS = ("wait_for_model", "use_cache")


@dataclass
class Body:
    """A request body as received: `kind` is "json", "text" or "binary"."""

    kind: str
    value: Any
    content_type: str = ""


@dataclass
class HfRequest:
    task: Task
    inputs: list[Any]  # one per item; media as bytes until decode_media
    batched: bool  # the caller sent a list: answer a list
    parameters: dict[str, Any]
    wait_for_model: bool | None = None  # options.wait_for_model as sent (None: not sent)
    stream: bool = False
    characters: int = 0
    raw_parameters: dict[str, Any] = field(
        default_factory=dict
    )  # as sent (text generation checks them itself)


def _flag_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def parse_body(data: bytes, content_type: str | None) -> Body:
    """The body as JSON, text or binary; JSON nested deeper than MAX_JSON_DEPTH or text with NULs answer 400."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not data:
        raise ServerError('The request body is empty: send JSON {"inputs": ...}, text, or image/audio bytes.')
    if ctype.startswith(_BINARY_TYPES):
        return Body("binary", data, ctype)
    head = data.lstrip()[:1]
    if ctype == "application/json" or ctype.endswith("+json") or head in (b"{", b"[", b'"'):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if ctype == "application/json" or head in (b"{", b"["):
                raise ServerError(f"The request body is not valid JSON: {exc}.") from None
        else:
            check_json(value)
            return Body("json", value, ctype)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Body("binary", data, ctype)
    if "\x00" in text:
        raise _nul("body")
    return Body("text", text, ctype)


def _nul(where: str) -> ServerError:
    return ServerError(
        f"`{where}` holds a NUL character (\\u0000); text inputs may not contain it (C libraries the models "
        "use stop reading at it)."
    )


def check_json(value: Any) -> None:
    """400 for JSON nested deeper than MAX_JSON_DEPTH, or holding a NUL character in a string value. (Keys are
    names, never text a model's C library reads: a NUL there is left to the field checks.)

    Iterative, so that checking a deep body cannot itself overflow the stack; deep bodies otherwise reached
    code that recurses (1,000 levels of `parameters` made the engine's json.dumps raise RecursionError: 500).
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise _nul(where or "body")
            continue
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            raise ServerError(
                f"The request body nests objects and lists more than {MAX_JSON_DEPTH} levels deep "
                f"(at `{where}`); this server takes at most {MAX_JSON_DEPTH}."
            )
        for key, child in items:
            if isinstance(child, (dict, list, str)):
                path = f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else key)
                stack.append((child, depth + 1, path))


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ServerError(f"`{where}` must be a string, got {_type_name(value)}.")
    if not value.strip():
        raise ServerError(f"`{where}` is empty.")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ServerError(f"`{where}` must be a non-empty list of strings, got {_type_name(value)}.")
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _table(value: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(value, dict) or not value:
        raise ServerError(
            f"`{where}` must be an object of columns, {{column: [cell, ...]}}, got {_type_name(value)}."
        )
    table: dict[str, list[str]] = {}
    for column, cells in value.items():
        if not isinstance(cells, list):
            raise ServerError(f"`{where}.{column}` must be a list of cells, got {_type_name(cells)}.")
        if any(isinstance(c, (dict, list)) for c in cells):
            raise ServerError(f"`{where}.{column}` must hold strings or numbers.")
        table[str(column)] = ["" if c is None else str(c) for c in cells]
    lengths = {len(cells) for cells in table.values()}
    if len(lengths) > 1:
        raise ServerError(
            f"Every column of `{where}` must have the same length, got lengths {sorted(lengths)}."
        )
    return table


def _field(body: dict[str, Any], name: str) -> Any:
    """A field from the top level or from the `inputs` object (clients use both)."""
    if name in body:
        return body[name]
    inputs = body.get("inputs")
    if isinstance(inputs, dict) and name in inputs:
        return inputs[name]
    raise ServerError(f"Missing field `{name}` (at the top level of the body or inside `inputs`).")


def _media(body: Body, kind: InputKind, key: str) -> bytes:
    if body.kind == "binary":
        return bytes(body.value)
    if body.kind == "text":
        return media.b64decode(body.value, "body")
    value = body.value
    if isinstance(value, dict):
        if isinstance(value.get("inputs"), dict):  # {"image", "question"}...: another task's input
            raise _OtherShape(f"`inputs` must be {kind.value} in base64, not an object.")
        if "inputs" in value:
            return media.b64decode(value["inputs"], "inputs")
        if key in value:
            return media.b64decode(value[key], key)
        raise ServerError(f'Missing field `inputs`: send {kind.value} bytes, or JSON {{"inputs": <base64>}}.')
    return media.b64decode(value, "body")


def _inputs(task: Task, body: Body) -> tuple[list[Any], bool]:
    """The inputs, from `inputs` or from the top-level fields. Some clients send both (huggingface_hub's
    visual_question_answering): then both must be valid, as the schema says, and the usual one is used."""
    obj = body.value if body.kind == "json" and isinstance(body.value, dict) else {}
    aliases = _EXTRA_KEYS.get(task.input_kind, set())
    if "inputs" in obj and aliases & obj.keys():
        if task.input_kind is InputKind.IMAGE_QUESTION and not isinstance(obj["inputs"], dict):
            media.b64decode(obj["inputs"], "inputs")  # huggingface_hub sends the image as `inputs` too
        else:
            inputs_only = {k: v for k, v in obj.items() if k not in aliases}
            _read_inputs(task, Body("json", inputs_only, body.content_type))
        if task.input_kind in _MEDIA_KINDS:  # `inputs` wins there: check the alias on its own
            _read_inputs(
                task, Body("json", {k: v for k, v in obj.items() if k != "inputs"}, body.content_type)
            )
    return _read_inputs(task, body)


def _read_inputs(task: Task, body: Body) -> tuple[list[Any], bool]:
    kind = task.input_kind
    if kind in _MEDIA_KINDS:
        return [_media(body, kind, kind.value)], False
    if body.kind == "binary":
        raise ServerError(f"Task '{task.name}' takes {kind.value} input, not raw binary data; send JSON.")
    value = body.value
    obj: dict[str, Any] = value if isinstance(value, dict) else {"inputs": value}
    if kind is InputKind.TEXT:
        if "inputs" not in obj:
            raise ServerError('Missing field `inputs`: send {"inputs": "your text"}.')
        inputs = obj["inputs"]
        if isinstance(inputs, list) and not task.single_input:
            return _strings(inputs, "inputs"), True
        return [_text(inputs, "inputs")], False
    if kind is InputKind.IMAGE_QUESTION:
        image = media.b64decode(_field(obj, "image"), "image")
        return [{"image": image, "question": _text(_field(obj, "question"), "question")}], False
    if kind is InputKind.QUESTION_CONTEXT:
        q, c = _text(_field(obj, "question"), "question"), _text(_field(obj, "context"), "context")
        return [{"question": q, "context": c}], False
    if kind is InputKind.TABLE:
        inputs = obj.get("inputs")
        if "table" in obj:
            return [_table(obj["table"], "table")], False
        if isinstance(inputs, dict) and "data" in inputs:
            return [_table(inputs["data"], "inputs.data")], False
        raise ServerError('Missing table: send {"table": {column: [cells]}} or {"inputs": {"data": {...}}}.')
    if kind is InputKind.TABLE_QUERY:
        table, query = _table(_field(obj, "table"), "table"), _text(_field(obj, "query"), "query")
        return [{"table": table, "query": query}], False
    inputs = obj.get("inputs")
    if not isinstance(inputs, dict):
        raise ServerError(f"`inputs` must be an object for task '{task.name}', got {_type_name(inputs)}.")
    if kind is InputKind.SENTENCES:
        source = _text(inputs.get("source_sentence"), "inputs.source_sentence")
        return [
            {"source_sentence": source, "sentences": _strings(inputs.get("sentences"), "inputs.sentences")}
        ], False
    # CONVERSATION
    return [
        {
            "text": _text(inputs.get("text"), "inputs.text"),
            "past_user_inputs": _history(inputs.get("past_user_inputs"), "inputs.past_user_inputs"),
            "generated_responses": _history(inputs.get("generated_responses"), "inputs.generated_responses"),
        }
    ], False


def _history(value: Any, where: str) -> list[str]:
    """A conversation's earlier turns: absent, null or [] for none."""
    if value is None or value == []:
        return []
    return _strings(value, where)


def _parameters(task: Task, obj: dict[str, Any]) -> dict[str, Any]:
    params = obj.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ServerError(f"`parameters` must be an object, got {_type_name(params)}.")
    params = dict(params)
    if task.top_level_parameters:
        names = {p.name for p in task.parameters}
        top = {k: v for k, v in obj.items() if k in names}
        if top.keys() & params.keys():  # the top-level value wins, but the shadowed one must be valid too
            try:
                task.validate_parameters({k: v for k, v in params.items() if k in top})
            except ParameterError as exc:
                raise ServerError(str(exc)) from None
        params.update(top)
    return params


def _wait_for_model(obj: dict[str, Any]) -> bool | None:
    """options.wait_for_model as sent; None when not sent (the server then waits, see waiting.py)."""
    options = obj.get("options")
    if options is None:
        return None
    if not isinstance(options, dict):
        raise ServerError(f"`options` must be an object, got {_type_name(options)}.")
    for name in _OPTIONS:
        if options.get(name) is not None and not isinstance(options[name], bool):
            raise ServerError(f"`options.{name}` must be a boolean, got {_type_name(options[name])}.")
    return _flag_or_none(options.get("wait_for_model"))


class _OtherShape(ServerError):
    """The body has keys of another task: when a model serves several, another error says more."""


def _check_keys(task: Task, obj: dict[str, Any]) -> None:
    allowed = {"inputs", "parameters", "options"} | _EXTRA_KEYS.get(task.input_kind, set())
    if task.name == "text-generation":
        allowed.add("stream")
    if task.top_level_parameters:
        allowed |= {p.name for p in task.parameters}
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _OtherShape(
            f"Unknown field(s) {unknown} in the request body for task '{task.name}'; expected {sorted(allowed)}."
        )


def _characters(inputs: list[Any]) -> int:
    total = 0
    for item in inputs:
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(v) for v in item.values() if isinstance(v, str))
    return total


def extract(task: Task, body: Body) -> HfRequest:
    """Check `body` against `task`'s contract; raises ServerError (400) naming what is wrong."""
    obj = body.value if body.kind == "json" and isinstance(body.value, dict) else {}
    if obj:
        _check_keys(task, obj)
    inputs, batched = _inputs(task, body)
    raw = _parameters(task, obj)
    wait_for_model = _wait_for_model(obj)
    stream = obj.get("stream", False)
    if not isinstance(stream, bool):
        raise ServerError(f"`stream` must be a boolean, got {_type_name(stream)}.")
    if task.name == "text-generation":
        params = raw  # validated by the TGI protocol, which answers in TGI's words
    else:
        try:
            params = task.validate_parameters(raw)
        except ParameterError as exc:
            raise ServerError(str(exc)) from None
    return HfRequest(
        task=task,
        inputs=inputs,
        batched=batched,
        parameters=params,
        wait_for_model=wait_for_model,
        stream=stream,
        characters=_characters(inputs),
        raw_parameters=raw,
    )


def resolve(model_id: str, served: Sequence[str], route_task: str | None, body: Body) -> HfRequest:
    """Pick the task (the route's, else the first of the model's tasks the body fits) and extract the request."""
    if route_task is not None:
        if route_task not in TASKS:
            raise ServerError(
                f"Unknown task '{route_task}'. Known tasks: {', '.join(sorted(TASKS))}.", "not_found"
            )
        if route_task not in served:
            raise ServerError(
                f"Model {model_id} does not serve task '{route_task}'; it serves: {', '.join(served)}.",
                "not_supported",
            )
        return extract(TASKS[route_task], body)
    candidates = [TASKS[t] for t in served if t in TASKS]
    if not candidates:
        raise ServerError(
            f"Model {model_id} serves no task of the Inference API; use its protocol routes.", "not_supported"
        )
    errors: list[ServerError] = []
    for task in candidates:
        try:
            return extract(task, body)
        except ServerError as exc:
            errors.append(exc)
    # The error of the first task whose fields the body has (a bad image for the VQA model) says more than
    # the first task's "unknown field" (image-classification takes no `question`).
    first_error = next((e for e in errors if not isinstance(e, _OtherShape)), errors[0])
    if len(candidates) > 1:
        first_error.message = f"{first_error.message} (tried tasks: {', '.join(t.name for t in candidates)})"
    raise first_error


def input_count(request: HfRequest) -> tuple[int, str]:
    """How many inputs `request` carries and the field holding them: what --max-client-batch-size bounds."""
    kind = request.task.input_kind
    if kind is InputKind.SENTENCES:
        return sum(len(i["sentences"]) for i in request.inputs), "inputs.sentences"
    if kind is InputKind.TABLE:  # tabular classification and regression answer one value per row
        return sum(len(next(iter(t.values()), [])) for t in request.inputs), "table"
    return len(request.inputs), "inputs"


def decode_media(request: HfRequest, limits: MediaLimits) -> None:
    """Decode image/audio bytes in place, within `limits` (CPU work: call from a worker thread)."""
    kind = request.task.input_kind
    if kind is InputKind.IMAGE:
        request.inputs = [decode_image(b, "inputs", limits) for b in request.inputs]
    elif kind is InputKind.AUDIO:
        request.inputs = [decode_audio(b, "inputs", limits) for b in request.inputs]
    elif kind is InputKind.IMAGE_QUESTION:
        request.inputs = [{**i, "image": decode_image(i["image"], "image", limits)} for i in request.inputs]
