"""OpenAI's legacy completions: /v1/completions and /models/{id}/v1/completions, for text-generation models.

The prompt goes to the model as it is (no chat template); generation, streaming and errors are the chat
route's (openai.run_generation). `max_tokens` defaults to 16, as OpenAI's and vLLM's do. What the backends
cannot do is refused with a 400 naming the field: several prompts, token-id prompts, `suffix`, `best_of` > 1,
`logprobs` (the runtimes report only the chosen token's logprob, not the top alternatives it asks for).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..metrics import Observation
from ..state import AppState, endpoint
from . import openai_wire as wire
from .openai import bad, generation_parameters, json_body, model_for, run_generation
from .tgi import validate

DEFAULT_MAX_TOKENS = 16


def prompt_of(body: Mapping[str, Any]) -> str:
    """`prompt` as one string: a string, or a list holding one string."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise bad("`prompt` is empty.", "prompt")
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        raise bad(
            f"`prompt` has {len(prompt)} prompts; this server completes one prompt per request.", "prompt"
        )
    if isinstance(prompt, list) and prompt and all(isinstance(p, (int, list)) for p in prompt):
        raise bad("Token-id prompts are not supported: send `prompt` as text.", "prompt")
    raise bad("`prompt` must be a string (or a list of one string).", "prompt")


def refuse_unsupported(body: Mapping[str, Any]) -> None:
    if body.get("suffix") not in (None, ""):
        raise bad("`suffix` (insertion) is not supported.", "suffix")
    if isinstance(body.get("best_of"), bool) or body.get("best_of") not in (None, 1):
        raise bad("Only `best_of` = 1 is supported.", "best_of")
    if body.get("logprobs") is not None:
        raise bad(
            "`logprobs` is not supported on /v1/completions: the models report only the chosen token's "
            "logprob (use /v1/chat/completions with `logprobs: true`, or TGI's `details`).",
            "logprobs",
        )
    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise bad("`echo` must be a boolean.", "echo")


@endpoint(protocol="openai")
async def completions(request: Request, state: AppState, obs: Observation) -> Response:
    body = await json_body(request, state, "`prompt`")
    model_id = model_for(request, state, body, ("text-generation",), "text-generation")
    obs.model, obs.task = model_id, "text-generation"
    prompt = prompt_of(body)
    refuse_unsupported(body)
    raw = generation_parameters(body)
    raw.setdefault("max_new_tokens", DEFAULT_MAX_TOKENS)
    params = validate(raw, stream=body.get("stream") is True)
    echo = prompt if body.get("echo") is True else ""
    return await run_generation(
        request,
        state,
        obs,
        model_id,
        body,
        params,
        prompt=prompt,
        prompt_param="prompt",
        answer=functools.partial(wire.text_completion, model=model_id, echo=echo),
        encoder=functools.partial(wire.CompletionStreamEncoder, model=model_id, echo=echo),
    )
