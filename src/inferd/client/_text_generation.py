"""text_generation without I/O: the v0.21 payload, its client-side checks, and parsing TGI answers and streams.

The client shell posts `build_payload(...)[0]`, then hands the body (or each SSE event's data) to
`parse_response` / `parse_stream_event`. Parsers tolerate what newer servers add (`index`, `input_length`,
`top_tokens`, unknown finish reasons): a field we do not know is ignored, a field we miss is None.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NoReturn

from ..errors import ERROR_TYPES, STATUS_ERRORS, HfHubHTTPError, UnknownError, error_class


class TextGenerationParameterError(ValueError):
    """A parameter is out of range; raised before any request, like v0.21's pydantic validation."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class FinishReason(str, Enum):
    Length = "length"
    EndOfSequenceToken = "eos_token"
    StopSequence = "stop_sequence"


@dataclass
class InputToken:
    id: int
    text: str
    logprob: float | None = None


@dataclass
class Token:
    id: int
    text: str
    logprob: float | None
    special: bool


@dataclass
class BestOfSequence:
    generated_text: str
    finish_reason: FinishReason | str | None
    generated_tokens: int | None
    seed: int | None = None
    prefill: list[InputToken] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)


@dataclass
class Details:
    finish_reason: FinishReason | str | None
    generated_tokens: int | None
    seed: int | None = None
    prefill: list[InputToken] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    best_of_sequences: list[BestOfSequence] | None = None
    top_tokens: list[list[Token]] | None = None


@dataclass
class TextGenerationResponse:
    generated_text: str
    details: Details | None = None


@dataclass
class StreamDetails:
    finish_reason: FinishReason | str | None
    generated_tokens: int | None
    seed: int | None = None
    input_length: int | None = None


@dataclass
class TextGenerationStreamResponse:
    token: Token
    index: int | None = None
    generated_text: str | None = None
    details: StreamDetails | None = None
    top_tokens: list[Token] | None = None


# v0.21's TextGenerationParameters, in its field order: the payload carries every key, nulls included.
DEFAULT_PARAMETERS: dict[str, Any] = {
    "do_sample": False,
    "max_new_tokens": 20,
    "repetition_penalty": None,
    "return_full_text": False,
    "stop": [],
    "seed": None,
    "temperature": None,
    "top_k": None,
    "top_p": None,
    "truncate": None,
    "typical_p": None,
    "best_of": None,
    "watermark": False,
    "details": False,
    "decoder_input_details": False,
}
# Parameters newer than v0.21: sent only when given, so a v0.21 payload stays byte-identical.
OPTIONAL_PARAMETERS: tuple[str, ...] = ("top_n_tokens", "grammar", "frequency_penalty", "adapter_id")
# What v0.21 strips for a server that is not TGI, in the order its warning lists them.
NON_TGI_PARAMETERS: tuple[str, ...] = ("watermark", "stop", "details", "decoder_input_details", "best_of")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TextGenerationParameterError(name, f"`{name}` must be a number, got {value!r}")
    return value


def validate_parameters(prompt: str, parameters: Mapping[str, Any], *, stream: bool) -> None:
    """v0.21's checks (TGI's own limits); the first failure raises TextGenerationParameterError."""
    if not prompt:
        raise TextGenerationParameterError("inputs", "`inputs` cannot be empty")
    strictly_positive = ("repetition_penalty", "temperature", "top_k", "truncate")
    for name in strictly_positive:
        if parameters.get(name) is not None and _number(name, parameters[name]) <= 0:
            raise TextGenerationParameterError(name, f"`{name}` must be strictly positive")
    for name in ("top_p", "typical_p"):
        if parameters.get(name) is not None and not 0 < _number(name, parameters[name]) < 1:
            raise TextGenerationParameterError(name, f"`{name}` must be > 0.0 and < 1.0")
    seed = parameters.get("seed")
    if seed is not None and _number("seed", seed) < 0:
        raise TextGenerationParameterError("seed", "`seed` must be positive")
    best_of = parameters.get("best_of")
    if best_of is None:
        return
    if _number("best_of", best_of) <= 0:
        raise TextGenerationParameterError("best_of", "`best_of` must be strictly positive")
    if best_of > 1:
        if seed is not None:
            raise TextGenerationParameterError("best_of", "`seed` must not be set when `best_of` is > 1")
        sampling = bool(parameters.get("do_sample")) or any(
            parameters.get(name) is not None for name in ("temperature", "top_k", "top_p", "typical_p")
        )
        if not sampling:
            raise TextGenerationParameterError("best_of", "you must use sampling when `best_of` is > 1")
        if stream:
            raise TextGenerationParameterError(
                "best_of", "`best_of` != 1 is not supported when `stream` == True"
            )


def build_payload(
    prompt: str, *, stream: bool, parameters: Mapping[str, Any], unsupported: Iterable[str]
) -> tuple[dict[str, Any], list[str]]:
    """The request body, and the non-None parameters dropped because the server does not take them.

    `parameters` uses payload names (`stop`; the method's `stop_sequences` is accepted too). Names beyond
    v0.21's are sent only when not None.
    """
    given = dict(parameters)
    if "stop_sequences" in given:
        stop_sequences = given.pop("stop_sequences")
        if given.get("stop") is None:
            given["stop"] = stop_sequences
    params = dict(DEFAULT_PARAMETERS)
    params["stop"] = []
    for name, value in given.items():
        if name in DEFAULT_PARAMETERS:
            params[name] = value
        elif value is not None:
            params[name] = value  # newer TGI parameters, and generation kwargs some servers accept
    if params["stop"] is None:
        params["stop"] = []
    validate_parameters(prompt, params, stream=stream)
    if params["decoder_input_details"] and not params["details"]:
        warnings.warn(
            "`decoder_input_details=True` has been passed to the server but `details=False` is set meaning that"
            " the server won't return the details anyway.",
            UserWarning,
            stacklevel=3,
        )
        params["decoder_input_details"] = False
    unsupported = set(unsupported)
    order = [*NON_TGI_PARAMETERS, *(name for name in params if name not in NON_TGI_PARAMETERS)]
    dropped = [name for name in order if name in unsupported and params.get(name) is not None]
    for name in unsupported:
        params.pop(name, None)
    return {"inputs": prompt, "parameters": params, "stream": stream}, dropped


# transformers' pipeline error when a server is not TGI; newer ones list only the kwargs it does not use.
_MODEL_KWARGS = re.compile(r"The following `model_kwargs` are not used by the model: \[(.*?)\]")


def parse_model_kwargs_error(message: str) -> list[str] | None:
    """The parameter names in a `model_kwargs are not used` error, or None for any other message."""
    match = _MODEL_KWARGS.search(message)
    if match is None:
        return None
    return [name.strip().strip("'\"") for name in match.group(1).split(",") if name.strip()]


def _finish_reason(value: Any) -> FinishReason | str | None:
    if value is None:
        return None
    try:
        return FinishReason(value)
    except ValueError:
        return str(value)  # a reason newer than us: keep the server's word rather than fail


def _input_token(data: Mapping[str, Any]) -> InputToken:
    return InputToken(id=data.get("id"), text=data.get("text"), logprob=data.get("logprob"))  # type: ignore[arg-type]


def _token(data: Mapping[str, Any]) -> Token:
    return Token(
        id=data.get("id"),  # type: ignore[arg-type]
        text=data.get("text"),  # type: ignore[arg-type]
        logprob=data.get("logprob"),
        special=bool(data.get("special", False)),
    )


def _tokens(items: Any) -> list[Token]:
    return [_token(item) for item in items or ()]


def _best_of(data: Mapping[str, Any]) -> BestOfSequence:
    return BestOfSequence(
        generated_text=data.get("generated_text"),  # type: ignore[arg-type]
        finish_reason=_finish_reason(data.get("finish_reason")),
        generated_tokens=data.get("generated_tokens"),
        seed=data.get("seed"),
        prefill=[_input_token(item) for item in data.get("prefill") or ()],
        tokens=_tokens(data.get("tokens")),
    )


def _details(data: Mapping[str, Any]) -> Details:
    best_of = data.get("best_of_sequences")
    top = data.get("top_tokens")
    return Details(
        finish_reason=_finish_reason(data.get("finish_reason")),
        generated_tokens=data.get("generated_tokens"),
        seed=data.get("seed"),
        prefill=[_input_token(item) for item in data.get("prefill") or ()],
        tokens=_tokens(data.get("tokens")),
        best_of_sequences=[_best_of(item) for item in best_of] if best_of is not None else None,
        top_tokens=[_tokens(step) for step in top] if top is not None else None,
    )


def error_from_body(status_code: int | None, body: Any, request_id: str | None = None) -> HfHubHTTPError:
    """The typed exception for an error body `{"error": str | list | {"message", "type"}, "error_type"?}`.

    A typed error inside a 200 stream (status None) that we do not know is an UnknownError, like v0.21.
    """
    body = body if isinstance(body, Mapping) else {"error": str(body)}
    error = body.get("error")
    tgi_type = body.get("error_type") if isinstance(body.get("error_type"), str) else None
    error_type, code = tgi_type, None
    if isinstance(error, Mapping):  # OpenAI / vLLM: {"error": {"message", "type", "code"}}
        openai_type = error.get("type")
        error_type = tgi_type or (openai_type if isinstance(openai_type, str) else None)
        code = error.get("code")
        message = str(error.get("message", error))
    elif isinstance(error, list):
        message = "\n".join(str(item) for item in error)
    else:
        message = str(error)
    if status_code is not None:
        # Next to a status, only a name we know picks the class: OpenAI's `type` ("invalid_request_error")
        # says less than the status does.
        cls = error_class(tgi_type or (error_type if error_type in ERROR_TYPES else None), status_code)
    elif error_type is not None and error_type in ERROR_TYPES:
        cls = ERROR_TYPES[error_type]
    elif isinstance(code, int) and code in STATUS_ERRORS:
        cls = STATUS_ERRORS[code]
    else:
        cls = UnknownError
    return cls(
        message,
        status_code=status_code,
        server_message=message,
        request_id=request_id,
        error_type=error_type,
    )


def raise_for_error_body(status_code: int | None, body: Any, request_id: str | None = None) -> NoReturn:
    raise error_from_body(status_code, body, request_id)


def parse_response(body: Any, *, details: bool) -> str | TextGenerationResponse:
    """A non-stream answer: `[GenerateResponse]` (the `/` route) or a bare `GenerateResponse`."""
    if isinstance(body, list):
        if not body:
            raise ValueError("The server answered text-generation with an empty list.")
        body = body[0]
    if not isinstance(body, Mapping):
        raise ValueError(f"Unexpected text-generation answer: {body!r}")
    if "error" in body and "generated_text" not in body:
        raise_for_error_body(None, body)
    text = body.get("generated_text")
    if not isinstance(text, str):
        raise ValueError(f"A text-generation answer has no `generated_text`: {str(body)[:200]!r}")
    if not details:
        return text
    raw_details = body.get("details")
    return TextGenerationResponse(
        generated_text=text,
        details=_details(raw_details) if isinstance(raw_details, Mapping) else None,
    )


def _json_event(data: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Cannot parse a server-sent event as JSON: {data[:200]!r}") from exc


def parse_stream_event(data: str, *, details: bool) -> str | TextGenerationStreamResponse | None:
    """One `/generate_stream` event's data: the token's text (or the whole event), None at `[DONE]`."""
    if data.strip() == "[DONE]":
        return None
    payload = _json_event(data)
    if not isinstance(payload, Mapping):
        raise ValueError(f"Unexpected text-generation stream event: {data[:200]!r}")
    if "error" in payload:
        raise_for_error_body(None, payload)
    raw_token = payload.get("token")
    if not isinstance(raw_token, Mapping):
        raise ValueError(f"A text-generation stream event has no token: {data[:200]!r}")
    token = _token(raw_token)
    if not details:
        return token.text
    raw_details = payload.get("details")
    stream_details = None
    if isinstance(raw_details, Mapping):
        stream_details = StreamDetails(
            finish_reason=_finish_reason(raw_details.get("finish_reason")),
            generated_tokens=raw_details.get("generated_tokens"),
            seed=raw_details.get("seed"),
            input_length=raw_details.get("input_length"),
        )
    top = payload.get("top_tokens")
    return TextGenerationStreamResponse(
        token=token,
        index=payload.get("index"),
        generated_text=payload.get("generated_text"),
        details=stream_details,
        top_tokens=_tokens(top) if top is not None else None,
    )
