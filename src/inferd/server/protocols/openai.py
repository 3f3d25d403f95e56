"""OpenAI-compatible chat completions: /v1/chat/completions and /models/{id}/v1/chat/completions, /v1/models,
and what the other OpenAI routes share (picking the model, the body, generation; see openai_completions.py and
openai_embeddings.py).

Errors use OpenAI's envelope. The body's `model` picks the model on /v1 ("dummy", "tgi" or none means the
server's default model for the route); under /models/{id} the path decides.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...backends import Generation, InputError, StreamStep
from ...tasks import CHAT_COMPLETION
from ..drain import DRAIN
from ..errors import ServerError, shutting_down
from ..limits import read_body, unless_disconnected
from ..metrics import Observation
from ..payload import parse_body
from ..respond import JSONResponse, as_server_error, openai_error_body
from ..state import AppState, endpoint
from ..waiting import waits_for_model
from . import openai_wire as wire
from .tgi import close_quietly, for_runtime, validate

# `model` values that mean "the server's default model for this route" (clients must send something).
PLACEHOLDERS = ("", "dummy", "tgi", "default")
_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def bad(message: str, param: str | None = None) -> ServerError:
    return ServerError(message, "bad_request", extra={"param": param} if param else None)


def _content(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: only text ones can be read by a text model
        texts = []
        for i, part in enumerate(value):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise bad(f"`{where}[{i}]` must be a text part {{'type': 'text', 'text': ...}}.", where)
            texts.append(part["text"])
        return "".join(texts)
    if value is None:
        return ""
    raise bad(f"`{where}` must be a string or a list of text parts.", where)


def messages_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("`messages` must be a non-empty list of {role, content} objects.", "messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise bad(f"`messages[{i}]` must be an object with a string `role`.", "messages")
        out.append({"role": m["role"], "content": _content(m.get("content"), f"messages[{i}].content")})
    return out


def _field(body: Mapping[str, Any], name: str) -> Any:
    """A field that holds a number or a string; a boolean is refused (True == 1 would pass for `n` = 1)."""
    value = body.get(name)
    if isinstance(value, bool):
        raise bad(f"`{name}` must be a number, got a boolean.", name)
    return value


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad(f"`{name}` must be a boolean.", name)
    return value is True


def include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise bad("`stream_options` must be an object.", "stream_options")
    return _flag(options, "include_usage")


def generation_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI request fields -> text-generation parameters (TGI names); what we cannot do is a 400 naming it.

    The OpenAPI schema (server/openapi/protocol_bodies.py) states the same rules: change both together.
    """
    params: dict[str, Any] = {}
    for name in ("max_tokens", "max_completion_tokens"):  # the newer name wins; both must be valid
        max_tokens = _field(body, name)
        if max_tokens is not None:
            params["max_new_tokens"] = validate({"max_new_tokens": max_tokens}, stream=False)[
                "max_new_tokens"
            ]
    temperature = _field(body, "temperature")
    if temperature is not None:
        if temperature == 0:
            params["do_sample"] = False
        else:
            params["temperature"], params["do_sample"] = temperature, True
    if _field(body, "top_p") not in (None, 1):
        params["top_p"] = body["top_p"]
    for name in ("seed", "frequency_penalty"):
        if _field(body, name) not in (None, 0):
            params[name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        params["stop"] = [stop] if isinstance(stop, str) else stop
    if _field(body, "n") not in (None, 1):
        raise bad("Only `n` = 1 is supported.", "n")
    if _field(body, "presence_penalty") not in (None, 0):
        raise bad("`presence_penalty` is not supported; use `frequency_penalty`.", "presence_penalty")
    if body.get("tools") not in (None, []):
        raise bad("Tool calls are not supported by this server.", "tools")
    if body.get("logit_bias") not in (None, {}):
        raise bad("`logit_bias` is not supported.", "logit_bias")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type", "text") != "text"):
        raise bad("Only `response_format` {'type': 'text'} is supported.", "response_format")
    _flag(body, "stream")
    include_usage(body)
    return params


class _ObservedStream(StreamingResponse):
    observes_itself = True


async def _events(
    first: StreamStep,
    rest: AsyncIterator[StreamStep],
    encoder: wire.ChatStreamEncoder,
    obs: Observation,
    prompt_tokens: Callable[[], Awaitable[int]],
) -> AsyncIterator[bytes]:
    status = 200
    try:
        for chunk in encoder.opening():
            yield wire.sse(chunk)
        step: StreamStep | None = first
        while step is not None:
            last = step.finish_reason is not None
            counted = await prompt_tokens() if last and encoder.include_usage else None
            for chunk in encoder.encode(step, prompt_tokens=counted):
                yield wire.sse(chunk)
            if last:
                break
            if DRAIN.expired:  # SIGTERM and the drain time is up: a final event, then a clean end of body
                status = 503
                yield wire.sse(openai_error_body(shutting_down()))
                return
            step = await anext(rest, None)
        else:
            raise ServerError("The generation stream ended before its last token.", "incomplete_generation")
        yield wire.sse(wire.DONE)
    except anyio.get_cancelled_exc_class():
        status = 499
        raise
    except Exception as exc:
        err = as_server_error(exc)
        status = err.status_code
        yield wire.sse(openai_error_body(err))
    finally:
        obs.generated_tokens = encoder.completion_tokens
        obs.done(status)
        await close_quietly(rest)


def model_for(
    request: Request, state: AppState, body: Mapping[str, Any], tasks: Sequence[str], kind: str
) -> str:
    """The path's model, else the body's `model`, else (none or a placeholder) the server's default for the
    first of `tasks` it has one for. An unknown model is a 404."""
    model_id = request.path_params.get("model_id")
    if model_id is None:
        named = body.get("model")
        if named is not None and not isinstance(named, str):
            raise bad("`model` must be a string.", "model")
        model_id = named if named not in PLACEHOLDERS and named is not None else None
        model_id = model_id or next((m for m in map(state.engine.recommended, tasks) if m), None)
    if not model_id:
        raise ServerError(f"This server has no {kind} model.", "not_found")
    state.engine.entry(model_id)
    return str(model_id)


async def json_body(request: Request, state: AppState, expected: str) -> dict[str, Any]:
    parsed = parse_body(
        await read_body(request, state.settings.max_json_bytes), request.headers.get("content-type")
    )
    if parsed.kind != "json" or not isinstance(parsed.value, dict):
        raise bad(f"The body must be a JSON object with {expected}.")
    return parsed.value


async def run_generation(
    request: Request,
    state: AppState,
    obs: Observation,
    model_id: str,
    body: Mapping[str, Any],
    params: dict[str, Any],
    *,
    prompt: str | Callable[[Any], str],
    prompt_param: str,
    answer: Callable[..., dict[str, Any]],
    encoder: Callable[..., wire.ChatStreamEncoder],
    logprobs: bool = False,
) -> Response:
    """Generate for one prompt and answer in OpenAI's shape, as JSON or as SSE chunks ending in [DONE].

    `prompt` is the text, or renders it from the loaded model (a chat template). `answer(gen, stop=...)` and
    `encoder(stop=..., include_usage=...)` make the wire objects; `params` are validated TGI parameters.
    """
    stream = body.get("stream") is True
    wait = waits_for_model(request)
    timeout = state.settings.request_timeout_s
    handle = await unless_disconnected(
        request, state.engine.generator(model_id, wait_for_model=wait), timeout
    )
    try:
        runtime = for_runtime(params, frozenset(handle.model.supported_parameters))
        if "_logprobs" in handle.model.supported_parameters:  # a runtime that can skip per-token logprobs
            runtime["_logprobs"] = logprobs
        if isinstance(prompt, str):
            text = prompt
        else:
            try:
                text = await run_in_threadpool(prompt, handle.model)
            except InputError as exc:
                raise bad(str(exc), prompt_param) from None
        stop = runtime.get("stop") or ()

        async def prompt_tokens() -> int:
            return int(await run_in_threadpool(handle.model.count_tokens, text))

        if not stream:
            gen: Generation = await unless_disconnected(request, handle.generate(text, runtime), timeout)
            obs.generated_tokens = len(gen.tokens)
            out = answer(gen, stop=stop)
            out["usage"] = wire.usage(gen.prompt_tokens or await prompt_tokens(), len(gen.tokens))
            return JSONResponse(out, headers=obs.headers(state.settings.compute_type))
        steps = handle.stream(text, runtime).__aiter__()
        try:
            first = await unless_disconnected(request, anext(steps), timeout)
        except StopAsyncIteration:
            raise ServerError("The model generated nothing.", "incomplete_generation") from None
        except BaseException:
            await close_quietly(steps)
            raise
        chunks = encoder(stop=stop, include_usage=include_usage(body))
        headers = {**obs.headers(state.settings.compute_type), "X-Accel-Buffering": "no"}
        return _ObservedStream(
            _events(first, steps, chunks, obs, prompt_tokens), media_type="text/event-stream", headers=headers
        )
    finally:
        handle.close()  # generate() or stream() holds the model from here on


@endpoint(protocol="openai")
async def chat_completions(request: Request, state: AppState, obs: Observation) -> Response:
    body = await json_body(request, state, "`messages`")
    model_id = model_for(request, state, body, (CHAT_COMPLETION, "text-generation"), "chat")
    obs.model, obs.task = model_id, CHAT_COMPLETION
    messages = messages_of(body)
    params = validate(generation_parameters(body), stream=body.get("stream") is True)
    logprobs = _flag(body, "logprobs")
    return await run_generation(
        request,
        state,
        obs,
        model_id,
        body,
        params,
        prompt=lambda model: model.chat_prompt(messages),
        prompt_param="messages",
        answer=functools.partial(wire.chat_completion, model=model_id, logprobs=logprobs),
        encoder=functools.partial(wire.ChatStreamEncoder, model=model_id, logprobs=logprobs),
        logprobs=logprobs,
    )


@endpoint(protocol="openai", record=False)
async def list_models(request: Request, state: AppState, obs: Observation) -> Response:
    data = [
        {"id": e.model_id, "object": "model", "created": 0, "owned_by": "inferd", "tasks": list(e.tasks)}
        for e in state.engine.entries()
    ]
    return JSONResponse({"object": "list", "data": data})
