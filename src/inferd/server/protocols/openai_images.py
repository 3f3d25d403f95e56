"""OpenAI's image generation: POST /v1/images/generations (and /models/{id}/v1/images/generations).

    client.images.generate(model="my-org/sd", prompt="a red square", n=2, size="64x64",
                           response_format="b64_json")

`model` picks a text-to-image model as on the chat route (none or a placeholder: the server's default). `n`
images of the one prompt go to the engine as one request, so they batch together (a list of prompts in one
pipeline call). `size` is "WIDTHxHEIGHT" (or "auto": the model's own size). Images come back as base64 PNG in
`b64_json`: `response_format: "url"` is refused, since this server stores no files to point at. The task's
own parameters (`negative_prompt`, `num_inference_steps`, `guidance_scale`, `seed`, `scheduler`) are accepted
as extra body fields (the SDK's `extra_body`); a `seed` with `n` > 1 gives n equal images.
"""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...tasks import ParameterError, get_task
from ..errors import ServerError
from ..hub import no_model_message
from ..limits import unless_disconnected
from ..metrics import Observation
from ..respond import JSONResponse
from ..state import AppState, endpoint
from ..waiting import waits_for_model
from .openai import bad, json_body, model_for

TASK = "text-to-image"
MAX_IMAGES = 10  # OpenAI's limit per request
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
# OpenAI fields with nothing to do here (`user` is for OpenAI's abuse monitoring).
_IGNORED = {"user"}
_EXTRA = ("negative_prompt", "num_inference_steps", "guidance_scale", "seed", "scheduler")
_KNOWN = {"prompt", "model", "n", "size", "response_format", "output_format", *_IGNORED, *_EXTRA}


def parameters_of(body: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """(prompt, n, text-to-image parameters) from the body; a 400 naming the field for anything wrong."""
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise bad(f"Unsupported field(s) {unknown}; this server takes {sorted(_KNOWN)}.", unknown[0])
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad("`prompt` must be a non-empty string.", "prompt")
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
        raise bad(f"`n` must be a whole number from 1 to {MAX_IMAGES}, got {n!r}.", "n")
    response_format = body.get("response_format") or "b64_json"
    if response_format == "url":
        raise bad(
            '`response_format: "url"` is not available: this server stores no files to link to. '
            'Ask for `response_format: "b64_json"`.',
            "response_format",
        )
    if response_format != "b64_json":
        raise bad(f'`response_format` must be "b64_json", got {response_format!r}.', "response_format")
    if body.get("output_format") not in (None, "png"):
        raise bad(f'`output_format` must be "png", got {body["output_format"]!r}.', "output_format")
    params = {k: body[k] for k in _EXTRA if body.get(k) is not None}
    size = body.get("size")
    if size not in (None, "auto"):
        match = _SIZE.match(size) if isinstance(size, str) else None
        if match is None:
            raise bad(f'`size` must be "WIDTHxHEIGHT" (e.g. "512x512") or "auto", got {size!r}.', "size")
        params["width"], params["height"] = int(match.group(1)), int(match.group(2))
    try:
        params = get_task(TASK).validate_parameters(params)
    except ParameterError as exc:
        field = re.search(r"`(\w+)`", str(exc))
        raise bad(str(exc), field.group(1) if field else None) from None
    return prompt, n, params


def _png_b64(image: Any) -> str:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


@endpoint(protocol="openai")
async def generations(request: Request, state: AppState, obs: Observation) -> Response:
    body = await json_body(request, state, "`prompt`")
    if not any(TASK in e.tasks for e in state.engine.entries()):
        raise ServerError(no_model_message(TASK), "not_found")
    model_id = model_for(request, state, body, (TASK,), "text-to-image")
    obs.model, obs.task = model_id, TASK
    prompt, n, params = parameters_of(body)
    work = state.engine.predict(model_id, TASK, [prompt] * n, params, wait_for_model=waits_for_model(request))
    images = await unless_disconnected(request, work, state.settings.request_timeout_s)
    encoded = await run_in_threadpool(lambda: [_png_b64(image) for image in images])
    answer = {"created": int(time.time()), "data": [{"b64_json": b64} for b64 in encoded]}
    return JSONResponse(answer, headers=obs.headers(state.settings.compute_type))
