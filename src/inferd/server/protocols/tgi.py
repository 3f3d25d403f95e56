"""The TGI protocol: the model URL (compat), /generate and /generate_stream (servers.md §2.2-2.4).

Parameters are checked with the text-generation task's limits (422 `validation`, TGI's words); parameters the
model's runtime cannot honour get the 400 ``The following `model_kwargs` are not used by the model: [...]`` that
InferenceClient and text_generation.Client recognise and retry without.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...backends import InputError, StreamStep
from ...tasks import TASKS, ParameterError
from ..drain import DRAIN
from ..errors import ServerError, shutting_down
from ..limits import read_body, unless_disconnected
from ..metrics import Observation
from ..payload import HfRequest, parse_body
from ..respond import JSONResponse, as_server_error
from ..state import AppState, endpoint
from ..waiting import waits_for_model
from . import tgi_wire as wire

log = logging.getLogger("inferd.server")

TEXT_GENERATION = TASKS["text-generation"]
# TGI's rules for a stream: one sequence (`best_of` 1), no prompt details. The schema of /generate_stream and
# of `"stream": true` bodies reads this variant, so it states them once.
STREAMING_TEXT_GENERATION = dataclasses.replace(
    TEXT_GENERATION,
    parameters=tuple(
        dataclasses.replace(p, maximum=1, description=f"{p.description} Streams take 1.")
        if p.name == "best_of"
        else dataclasses.replace(p, choices=(False,), description=f"{p.description} Not when streaming.")
        if p.name == "decoder_input_details"
        else p
        for p in TEXT_GENERATION.parameters
    ),
)
# Handled here, whatever the runtime: they shape the answer, not the generation.
_SERVER_SIDE = {"details", "return_full_text"}


def _neutral(name: str, value: Any) -> bool:
    """A value that asks nothing of the runtime (the v0.21 client sends every key, mostly like this)."""
    return value is None or value is False or value == [] or (name == "best_of" and value == 1)


def validate(raw: Any, *, stream: bool) -> dict[str, Any]:
    """The parameters, checked against TGI's limits, or a 422 `validation` ServerError in TGI's words."""
    task = STREAMING_TEXT_GENERATION if stream else TEXT_GENERATION
    try:
        return task.validate_parameters(raw)
    except ParameterError as exc:
        raise ServerError(f"Input validation error: {exc}", "validation") from None


def for_runtime(params: Mapping[str, Any], supported: frozenset[str]) -> dict[str, Any]:
    """The parameters the runtime gets; any it cannot honour is the `model_kwargs` 400 clients retry on."""
    unused = [
        k for k, v in params.items() if k not in supported and k not in _SERVER_SIDE and not _neutral(k, v)
    ]
    if unused:
        raise ServerError(
            f"The following `model_kwargs` are not used by the model: {unused} "
            "(note: typos in the generate arguments will also show up in this list)"
        )
    return {k: v for k, v in params.items() if k in supported}


async def close_quietly(iterator: Any) -> None:
    """Close a stream even from a cancelled task (the close is what stops the model)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()


def prompt_of(inputs: Any) -> str:
    if not isinstance(inputs, str):
        raise ServerError(
            f"Input validation error: `inputs` must be a string, got {type(inputs).__name__}.", "validation"
        )
    if not inputs.strip():
        raise ServerError("Input validation error: `inputs` cannot be empty", "validation")
    return inputs


def error_event(exc: BaseException) -> bytes:
    err = as_server_error(exc)
    return wire.sse(wire.error_event(err.message, err.error_type))


class _ObservedStream(StreamingResponse):
    observes_itself = True


async def _events(
    first: StreamStep,
    rest: AsyncIterator[StreamStep],
    encoder: wire.StreamEncoder,
    obs: Observation,
    input_length: Callable[[], Awaitable[int]],
) -> AsyncIterator[bytes]:
    status = 200
    try:
        step: StreamStep | None = first
        while step is not None:
            last = step.finish_reason is not None
            length = await input_length() if last and encoder.details else None
            yield wire.sse(encoder.encode(step, input_length=length))
            if last:
                return
            if DRAIN.expired:  # SIGTERM and the drain time is up: a final event, then a clean end of body
                status = 503
                yield error_event(shutting_down())
                return
            step = await anext(rest, None)
        status = 500
        yield error_event(
            ServerError("The generation stream ended before its last token.", "incomplete_generation")
        )
    except anyio.get_cancelled_exc_class():
        status = 499  # the client went away: closing `rest` below stops the generation
        raise
    except Exception as exc:  # after the 200 went out, errors travel as events
        status = as_server_error(exc).status_code
        yield error_event(exc)
    finally:
        obs.generated_tokens = encoder.index
        obs.done(status)
        await close_quietly(rest)


async def run(
    request: Request,
    state: AppState,
    obs: Observation,
    model_id: str,
    inputs: Any,
    raw_params: Any,
    *,
    stream: bool,
    wait: bool,
    default_full_text: bool,
    wrap_list: bool,
) -> Response:
    prompt = prompt_of(inputs)
    obs.task = "text-generation"
    params = validate(raw_params, stream=stream)
    handle = await unless_disconnected(
        request, state.engine.generator(model_id, wait_for_model=wait), state.settings.request_timeout_s
    )
    try:
        runtime = for_runtime(params, frozenset(handle.model.supported_parameters))
        params.setdefault("return_full_text", default_full_text)
        if (
            not stream and "_logprobs" in handle.model.supported_parameters
        ):  # stream events always carry logprobs
            runtime["_logprobs"] = bool(params.get("details"))
        if not stream:
            try:
                gen = await unless_disconnected(
                    request, handle.generate(prompt, runtime), state.settings.request_timeout_s
                )
            except InputError as exc:
                raise ServerError(str(exc), "validation") from None
            obs.generated_tokens = len(gen.tokens)
            body = wire.generate_response(
                gen,
                prompt=prompt,
                return_full_text=bool(params["return_full_text"]),
                details=bool(params.get("details")),
                seed=params.get("seed"),
            )
            headers = {**obs.headers(state.settings.compute_type), "x-compute-characters": str(len(prompt))}
            headers.update(
                {"x-prompt-tokens": str(gen.prompt_tokens), "x-generated-tokens": str(len(gen.tokens))}
            )
            return JSONResponse([body] if wrap_list else body, headers=headers)
        steps = handle.stream(prompt, runtime).__aiter__()
        try:
            first = await unless_disconnected(request, anext(steps), state.settings.request_timeout_s)
        except StopAsyncIteration:
            raise ServerError("The model generated nothing.", "incomplete_generation") from None
        except InputError as exc:
            raise ServerError(str(exc), "validation") from None
        except BaseException:
            await close_quietly(steps)
            raise
        headers = {**obs.headers(state.settings.compute_type), "x-compute-characters": str(len(prompt))}
        headers["X-Accel-Buffering"] = "no"
        encoder = wire.StreamEncoder(
            prompt=prompt,
            return_full_text=bool(params["return_full_text"]),
            details=bool(params.get("details")),
            seed=params.get("seed"),
        )

        async def input_length() -> int:
            return int(await run_in_threadpool(handle.model.count_tokens, prompt))

        events = _events(first, steps, encoder, obs, input_length)
        return _ObservedStream(events, media_type="text/event-stream", headers=headers)
    finally:
        handle.close()  # generate() or stream() holds the model from here on


async def compat(
    request: Request, state: AppState, obs: Observation, model_id: str, req: HfRequest
) -> Response:
    """POST /models/{id} for a text-generation model: `[GenerateResponse]`, or SSE when `stream` is true."""
    return await run(
        request,
        state,
        obs,
        model_id,
        req.inputs[0],
        req.raw_parameters,
        stream=req.stream,
        wait=req.wait_for_model is not False,  # set by the HF route from the header and options
        default_full_text=True,  # TGI's compat route defaults it from the pipeline tag (text-generation)
        wrap_list=True,
    )


async def _tgi_body(request: Request, state: AppState) -> dict[str, Any]:
    body = parse_body(
        await read_body(request, state.settings.max_json_bytes), request.headers.get("content-type")
    )
    if body.kind != "json" or not isinstance(body.value, dict):
        raise ServerError(
            'Input validation error: the body must be a JSON object {"inputs", "parameters"}.', "validation"
        )
    if "inputs" not in body.value:
        raise ServerError("Input validation error: missing field `inputs`.", "validation")
    return body.value


def _model_id(request: Request, state: AppState) -> str:
    model_id = request.path_params.get("model_id") or state.engine.recommended("text-generation")
    if not model_id:
        raise ServerError("This server has no text-generation model.", "not_found")
    state.engine.entry(model_id)
    return str(model_id)


@endpoint()
async def generate(request: Request, state: AppState, obs: Observation) -> Response:
    """POST /models/{id}/generate (and /generate): one GenerateResponse."""
    model_id = _model_id(request, state)
    body = await _tgi_body(request, state)
    return await run(
        request, state, obs, model_id, body["inputs"], body.get("parameters"),
        stream=False, wait=waits_for_model(request), default_full_text=False, wrap_list=False,
    )  # fmt: skip


@endpoint()
async def generate_stream(request: Request, state: AppState, obs: Observation) -> Response:
    """POST /models/{id}/generate_stream (and /generate_stream): SSE of StreamResponse."""
    model_id = _model_id(request, state)
    body = await _tgi_body(request, state)
    return await run(
        request, state, obs, model_id, body["inputs"], body.get("parameters"),
        stream=True, wait=waits_for_model(request), default_full_text=False, wrap_list=False,
    )  # fmt: skip
