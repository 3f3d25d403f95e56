"""chat_completion without I/O: the URL, the OpenAI-compatible body, and typed answers and stream chunks.

Outputs are dicts with attribute access, so code written for either shape works:

    out = parse_chat_response(body)
    out.choices[0].message.content == out["choices"][0]["message"]["content"]
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

from ._text_generation import raise_for_error_body

# The OpenAI parameters chat_completion takes (in the method's order); `extra_body` carries anything else.
CHAT_PARAMETERS: tuple[str, ...] = (
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "response_format",
    "seed",
    "stop",
    "stream_options",
    "temperature",
    "tool_choice",
    "tool_prompt",
    "tools",
    "top_logprobs",
    "top_p",
)


class BaseInferenceType(dict):  # type: ignore[type-arg]
    """A dict that also reads as an object: declared fields (class annotations) always exist, None when the
    server left them out; nested declared fields are parsed into their types; unknown fields are kept."""

    _field_types: ClassVar[dict[type, dict[str, Any]]] = {}

    def __init__(self, data: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        values = {**(data or {}), **kwargs}
        for name, kind in self._fields().items():
            self[name] = _parse(kind, values.get(name))
        for name, value in values.items():
            if name not in self:
                self[name] = value

    @classmethod
    def _fields(cls) -> dict[str, Any]:
        # Resolved lazily: annotations name classes defined further down this module.
        if cls not in BaseInferenceType._field_types:
            hints = typing.get_type_hints(cls)
            BaseInferenceType._field_types[cls] = {
                name: kind for name, kind in hints.items() if not name.startswith("_")
            }
        return BaseInferenceType._field_types[cls]

    @classmethod
    def parse_obj(cls, data: Any) -> Any:
        """An instance from a dict (or JSON text), or a list of instances from a list."""
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
        if isinstance(data, list):
            return [cls.parse_obj(item) for item in data]
        if not isinstance(data, Mapping):
            raise ValueError(f"Cannot parse {cls.__name__} from {type(data).__name__}")
        return cls(data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)  # keep copy/pickle protocol lookups away from the dict
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.items())})"


def _parse(kind: Any, value: Any) -> Any:
    """`value` shaped by the annotation `kind`: a BaseInferenceType, a list of them, or left as is."""
    if value is None:
        return None
    args = [arg for arg in get_args(kind) if arg is not type(None)]
    if get_origin(kind) in (typing.Union, _UnionType) and len(args) == 1:
        kind = args[0]  # X | None
    if isinstance(kind, type) and issubclass(kind, BaseInferenceType):
        return kind(value) if isinstance(value, Mapping) else value
    if get_origin(kind) is list and isinstance(value, list):
        return [_parse(get_args(kind)[0], item) for item in value]
    return value


_UnionType = type(int | None)


class ChatCompletionOutputTopLogprob(BaseInferenceType):
    logprob: float
    token: str


class ChatCompletionOutputLogprob(BaseInferenceType):
    logprob: float
    token: str
    top_logprobs: list[ChatCompletionOutputTopLogprob]


class ChatCompletionOutputLogprobs(BaseInferenceType):
    content: list[ChatCompletionOutputLogprob]


class ChatCompletionOutputFunctionDefinition(BaseInferenceType):
    arguments: Any  # a JSON string from OpenAI, already an object from TGI
    name: str
    description: str | None


class ChatCompletionOutputToolCall(BaseInferenceType):
    function: ChatCompletionOutputFunctionDefinition
    id: str
    type: str


class ChatCompletionOutputMessage(BaseInferenceType):
    role: str
    content: str | None
    reasoning: str | None
    tool_call_id: str | None
    tool_calls: list[ChatCompletionOutputToolCall] | None


class ChatCompletionOutputComplete(BaseInferenceType):
    finish_reason: str
    index: int
    message: ChatCompletionOutputMessage
    logprobs: ChatCompletionOutputLogprobs | None


class ChatCompletionOutputUsage(BaseInferenceType):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int


class ChatCompletionOutput(BaseInferenceType):
    choices: list[ChatCompletionOutputComplete]
    created: int
    id: str
    model: str
    system_fingerprint: str
    usage: ChatCompletionOutputUsage


class ChatCompletionStreamOutputFunction(BaseInferenceType):
    arguments: Any
    name: str | None


class ChatCompletionStreamOutputDeltaToolCall(BaseInferenceType):
    function: ChatCompletionStreamOutputFunction
    id: str
    index: int
    type: str


class ChatCompletionStreamOutputDelta(BaseInferenceType):
    role: str
    content: str | None
    reasoning: str | None
    tool_call_id: str | None
    tool_calls: list[ChatCompletionStreamOutputDeltaToolCall] | None


class ChatCompletionStreamOutputTopLogprob(BaseInferenceType):
    logprob: float
    token: str


class ChatCompletionStreamOutputLogprob(BaseInferenceType):
    logprob: float
    token: str
    top_logprobs: list[ChatCompletionStreamOutputTopLogprob]


class ChatCompletionStreamOutputLogprobs(BaseInferenceType):
    content: list[ChatCompletionStreamOutputLogprob]


class ChatCompletionStreamOutputChoice(BaseInferenceType):
    delta: ChatCompletionStreamOutputDelta
    index: int
    finish_reason: str | None
    logprobs: ChatCompletionStreamOutputLogprobs | None


class ChatCompletionStreamOutputUsage(BaseInferenceType):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int


class ChatCompletionStreamOutput(BaseInferenceType):
    choices: list[ChatCompletionStreamOutputChoice]
    created: int
    id: str
    model: str
    system_fingerprint: str
    usage: ChatCompletionStreamOutputUsage | None


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _chat_route(url: str) -> str:
    """`url` pointing at its chat route: spec §11's rules, the query string kept."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        return url  # already the full route: used verbatim, as the reference does
    if path.endswith("/v1"):
        path += "/chat/completions"
    else:
        path += "/v1/chat/completions"  # an empty path becomes "/v1/chat/completions" too
    return urlunsplit(parts._replace(path=path))


def chat_url(model: str | None, base_url: str | None, endpoint: str) -> str:
    """Where to POST a chat completion.

    `base_url` wins (the model then only travels in the body); else a URL `model` is the server;
    else a model id goes to `{endpoint}/models/{model}/v1/chat/completions`.
    """
    if base_url:
        return _chat_route(base_url)
    if not model:
        raise ValueError("chat_completion needs a model (id or URL) or a base_url.")
    if _is_url(model):
        return _chat_route(model)
    return f"{endpoint.rstrip('/')}/models/{model}/v1/chat/completions"


def _as_sent(messages: Any) -> Any:
    """A list (or tuple, or generator) of messages as a JSON list; anything else unchanged, as the reference
    sends it: `"some text"` must not become a list of characters, so the server's own 4xx reaches the caller."""
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Iterable):
        return messages
    return list(messages)


def build_chat_payload(
    messages: list[Any],
    *,
    model: str | None,
    parameters: Mapping[str, Any],
    extra_body: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The body: `model` first ("dummy" when the target is a raw URL), then messages, the parameters that
    are not None, and `extra_body` last so it can carry (or override) anything a server accepts."""
    payload: dict[str, Any] = {"model": model or "dummy", "messages": _as_sent(messages)}
    payload.update((name, value) for name, value in parameters.items() if value is not None)
    payload.update(extra_body or {})
    return payload


def parse_chat_response(body: Any) -> ChatCompletionOutput:
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if not isinstance(body, Mapping):
        raise ValueError(f"Unexpected chat completion answer: {str(body)[:200]!r}")
    if "error" in body and "choices" not in body:
        raise_for_error_body(None, body)
    return ChatCompletionOutput(body)


def parse_chat_stream_event(data: str) -> ChatCompletionStreamOutput | None:
    """One SSE event's data: a chunk, None at `[DONE]`; an `{"error": ...}` event raises its typed error."""
    if data.strip() == "[DONE]":
        return None
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Cannot parse a chat stream event as JSON: {data[:200]!r}") from exc
    if not isinstance(payload, Mapping):
        raise ValueError(f"Unexpected chat stream event: {data[:200]!r}")
    if "error" in payload:
        raise_for_error_body(None, payload)
    return ChatCompletionStreamOutput(payload)
