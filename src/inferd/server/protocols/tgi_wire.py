"""TGI's wire shapes from a backend's output: GenerateResponse, StreamResponse, the final stream event, errors.

Pure: plain dicts in, plain dicts out; the route serialises them (JSON body, or `sse(event)` per event).
Shapes follow TGI's router (servers.md §2.4): `top_tokens` and `best_of_sequences` are left out when empty,
as TGI's serde does; a stream event always carries `index`, `generated_text` and `details` (null until the end).

    encoder = StreamEncoder(prompt=prompt, details=True, input_length=7)
    for step in steps:
        yield sse(encoder.encode(step))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...backends.base import GeneratedToken, Generation, StreamStep
from ...sse import encode_event


def token(t: GeneratedToken) -> dict[str, Any]:
    return {"id": t.id, "text": t.text, "logprob": t.logprob, "special": t.special}


def _text(text: str, prompt: str, return_full_text: bool) -> str:
    # TGI prepends the prompt itself: backends only ever return what they generated.
    return prompt + text if return_full_text else text


def generation_details(
    gen: Generation,
    *,
    seed: int | None = None,
    best_of: Sequence[Generation] = (),
    top_tokens: Sequence[Sequence[GeneratedToken]] = (),
    prompt: str = "",
    return_full_text: bool = False,
) -> dict[str, Any]:
    """`GenerateResponse.details`. `seed` is the request's, used when the backend did not report one."""
    out: dict[str, Any] = {
        "finish_reason": gen.finish_reason,
        "generated_tokens": len(gen.tokens),
        "seed": gen.seed if gen.seed is not None else seed,
        "prefill": [],  # backends do not report prompt logprobs (decoder_input_details)
        "tokens": [token(t) for t in gen.tokens],
    }
    if top_tokens:
        out["top_tokens"] = [[token(t) for t in step] for step in top_tokens]
    if best_of:
        out["best_of_sequences"] = [
            {
                "generated_text": _text(other.text, prompt, return_full_text),
                "finish_reason": other.finish_reason,
                "generated_tokens": len(other.tokens),
                "seed": other.seed,
                "prefill": [],
                "tokens": [token(t) for t in other.tokens],
            }
            for other in best_of
        ]
    return out


def generate_response(
    gen: Generation,
    *,
    prompt: str = "",
    return_full_text: bool = False,
    details: bool = False,
    seed: int | None = None,
    best_of: Sequence[Generation] = (),
) -> dict[str, Any]:
    """One `GenerateResponse` (`/generate`); the compat route `/` answers `[generate_response(...)]`."""
    out: dict[str, Any] = {"generated_text": _text(gen.text, prompt, return_full_text)}
    if details:
        out["details"] = generation_details(
            gen, seed=seed, best_of=best_of, prompt=prompt, return_full_text=return_full_text
        )
    return out


def stream_details(
    finish_reason: str, generated_tokens: int, seed: int | None, input_length: int | None
) -> dict[str, Any]:
    return {
        "finish_reason": finish_reason,
        "generated_tokens": generated_tokens,
        "seed": seed,
        "input_length": input_length,
    }


def stream_response(
    index: int,
    step: StreamStep,
    *,
    generated_text: str | None = None,
    details: Mapping[str, Any] | None = None,
    top_tokens: Sequence[GeneratedToken] = (),
) -> dict[str, Any]:
    """One `StreamResponse` event. `index` counts tokens from 1, like TGI."""
    out: dict[str, Any] = {"index": index, "token": token(step.token)}
    if top_tokens:
        out["top_tokens"] = [token(t) for t in top_tokens]
    out["generated_text"] = generated_text
    out["details"] = dict(details) if details is not None else None
    return out


class StreamEncoder:
    """Turns one request's StreamSteps into StreamResponse events; the step with a finish reason is the last
    and carries `generated_text` (and `details` when the request asked for them)."""

    def __init__(
        self,
        *,
        prompt: str = "",
        return_full_text: bool = False,
        details: bool = False,
        seed: int | None = None,
        input_length: int | None = None,
    ) -> None:
        self.prompt = prompt
        self.return_full_text = return_full_text
        self.details = details
        self.seed = seed
        self.input_length = input_length
        self.index = 0  # tokens encoded so far
        self.finished = False
        self._pieces: list[str] = []

    def encode(self, step: StreamStep, *, input_length: int | None = None) -> dict[str, Any]:
        """The event for `step`; `input_length` may be given late (counting prompt tokens costs a model call)."""
        if self.finished:
            raise RuntimeError("This stream already sent its final event.")
        self.index += 1
        if not step.token.special:
            # TGI decodes generated_text without special tokens: the EOS shows as a token, not as text.
            self._pieces.append(step.token.text)
        if step.finish_reason is None:
            return stream_response(self.index, step)
        self.finished = True
        final_details = None
        if self.details:
            length = input_length if input_length is not None else self.input_length
            final_details = stream_details(step.finish_reason, self.index, self.seed, length)
        return stream_response(
            self.index,
            step,
            generated_text=_text("".join(self._pieces), self.prompt, self.return_full_text),
            details=final_details,
        )


def error_event(message: str, error_type: str) -> dict[str, str]:
    """An error after the 200 went out travels as an event: TGI's `ErrorResponse`."""
    return {"error": message, "error_type": error_type}


def sse(event: Mapping[str, Any] | str) -> bytes:
    """One event on the wire (`data: {...}\\n\\n`); compact JSON, non-ASCII kept, like TGI."""
    data = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return encode_event(data)
