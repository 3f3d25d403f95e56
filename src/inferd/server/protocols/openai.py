"""OpenAI-compatible chat completions: /v1/chat/completions and /models/{id}/v1/chat/completions, /v1/models.

Errors use OpenAI's envelope. The body's `model` picks the model on /v1 ("dummy", "tgi" or none means the
server's default chat model); under /models/{id} the path decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...backends import InputError, StreamStep
from ...tasks import CHAT_COMPLETION
from ..errors import ServerError
from ..limits import read_body, unless_disconnected
from ..metrics import Observation
from ..payload import parse_body
from ..respond import JSONResponse, as_server_error, openai_error_body
from ..state import AppState, endpoint
from . import openai_wire as wire
from .tgi import close_quietly, for_runtime, validate

_PLACEHOLDERS = {"", "dummy", "tgi", "default"}
_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def _bad(message: str, param: str | None = None) -> ServerError:
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
                raise _bad(f"`{where}[{i}]` must be a text part {{'type': 'text', 'text': ...}}.", where)
            texts.append(part["text"])
        return "".join(texts)
    if value is None:
        return ""
    raise _bad(f"`{where}` must be a string or a list of text parts.", where)


def messages_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("`messages` must be a non-empty list of {role, content} objects.", "messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad(f"`messages[{i}]` must be an object with a string `role`.", "messages")
        out.append({"role": m["role"], "content": _content(m.get("content"), f"messages[{i}].content")})
    return out


def generation_parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI request fields -> text-generation parameters (TGI names); what we cannot do is a 400 naming it."""
    params: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        params["max_new_tokens"] = max_tokens
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature == 0:
            params["do_sample"] = False
        else:
            params["temperature"], params["do_sample"] = temperature, True
    if body.get("top_p") not in (None, 1, 1.0):
        params["top_p"] = body["top_p"]
    for name in ("seed", "frequency_penalty"):
        if body.get(name) not in (None, 0):
            params[name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        params["stop"] = [stop] if isinstance(stop, str) else stop
    if body.get("n") not in (None, 1):
        raise _bad("Only `n` = 1 is supported.", "n")
    if body.get("presence_penalty") not in (None, 0):
        raise _bad("`presence_penalty` is not supported; use `frequency_penalty`.", "presence_penalty")
    if body.get("tools"):
        raise _bad("Tool calls are not supported by this server.", "tools")
    if body.get("logit_bias"):
        raise _bad("`logit_bias` is not supported.", "logit_bias")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise _bad("Only `response_format` {'type': 'text'} is supported.", "response_format")
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
        yield wire.sse(encoder.start())
        step: StreamStep | None = first
        while step is not None:
            last = step.finish_reason is not None
            counted = await prompt_tokens() if last and encoder.include_usage else None
            for chunk in encoder.encode(step, prompt_tokens=counted):
                yield wire.sse(chunk)
            if last:
                break
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


def _model_id(request: Request, state: AppState, body: Mapping[str, Any]) -> str:
    model_id = request.path_params.get("model_id")
    if model_id is None:
        named = body.get("model")
        if named is not None and not isinstance(named, str):
            raise _bad("`model` must be a string.", "model")
        model_id = named if named not in _PLACEHOLDERS and named is not None else None
        model_id = (
            model_id
            or state.engine.recommended(CHAT_COMPLETION)
            or state.engine.recommended("text-generation")
        )
    if not model_id:
        raise ServerError("This server has no chat model.", "not_found")
    state.engine.entry(model_id)
    return str(model_id)


@endpoint(protocol="openai")
async def chat_completions(request: Request, state: AppState, obs: Observation) -> Response:
    parsed = parse_body(
        await read_body(request, state.settings.max_json_bytes), request.headers.get("content-type")
    )
    if parsed.kind != "json" or not isinstance(parsed.value, dict):
        raise _bad("The body must be a JSON object with `messages`.")
    body = parsed.value
    model_id = _model_id(request, state, body)
    obs.model, obs.task = model_id, CHAT_COMPLETION
    messages = messages_of(body)
    stream = body.get("stream") is True
    params = validate(generation_parameters(body), stream=stream)
    wait = request.headers.get("x-wait-for-model", "").lower() in ("1", "true", "yes")
    timeout = state.settings.request_timeout_s
    handle = await unless_disconnected(
        request, state.engine.generator(model_id, wait_for_model=wait), timeout
    )
    runtime = for_runtime(params, frozenset(handle.model.supported_parameters))
    if "_logprobs" in handle.model.supported_parameters:  # a runtime that can skip per-token logprobs
        runtime["_logprobs"] = body.get("logprobs") is True
    try:
        prompt = await run_in_threadpool(handle.model.chat_prompt, messages)
    except InputError as exc:
        raise _bad(str(exc), "messages") from None

    async def prompt_tokens() -> int:
        return int(await run_in_threadpool(handle.model.count_tokens, prompt))

    if not stream:
        gen = await unless_disconnected(request, handle.generate(prompt, runtime), timeout)
        obs.generated_tokens = len(gen.tokens)
        answer = wire.chat_completion(
            gen, model=model_id, logprobs=body.get("logprobs") is True, stop=runtime.get("stop") or ()
        )
        answer["usage"] = wire.usage(gen.prompt_tokens or await prompt_tokens(), len(gen.tokens))
        return JSONResponse(answer, headers=obs.headers(state.settings.compute_type))
    steps = handle.stream(prompt, runtime).__aiter__()
    try:
        first = await unless_disconnected(request, anext(steps), timeout)
    except StopAsyncIteration:
        raise ServerError("The model generated nothing.", "incomplete_generation") from None
    except BaseException:
        await close_quietly(steps)
        raise
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    encoder = wire.ChatStreamEncoder(
        model=model_id,
        include_usage=include_usage,
        logprobs=body.get("logprobs") is True,
        stop=runtime.get("stop") or (),
    )
    headers = {**obs.headers(state.settings.compute_type), "X-Accel-Buffering": "no"}
    return _ObservedStream(
        _events(first, steps, encoder, obs, prompt_tokens), media_type="text/event-stream", headers=headers
    )


@endpoint(protocol="openai", record=False)
async def list_models(request: Request, state: AppState, obs: Observation) -> Response:
    data = [
        {"id": e.model_id, "object": "model", "created": 0, "owned_by": "inferd", "tasks": list(e.tasks)}
        for e in state.engine.entries()
    ]
    return JSONResponse({"object": "list", "data": data})
