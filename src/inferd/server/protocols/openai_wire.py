"""OpenAI's wire shapes from a backend's output: `chat.completion`, `chat.completion.chunk`, the legacy
`text_completion` (streamed or not), errors.

Pure: the route renders the messages into a prompt, runs the model, and serialises what these return
(JSON body, or `sse(chunk)` per chunk followed by `sse(DONE)`). Chunks follow OpenAI's order: a role-only
delta, one content delta per token, an empty delta with the finish reason, then (with
`stream_options.include_usage`) a chunk with no choices and the usage.

    encoder = ChatStreamEncoder(model=model_id, prompt_tokens=12, include_usage=True)
    yield sse(encoder.start())
    for step in steps:
        for chunk in encoder.encode(step):
            yield sse(chunk)
    yield sse(DONE)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..._version import __version__
from ...backends.base import GeneratedToken, Generation, StreamStep
from ...sse import encode_event

DONE = "[DONE]"
SYSTEM_FINGERPRINT = f"inferd-{__version__}"
# TGI's finish reasons in OpenAI's words; a reason we do not know passes through unchanged.
FINISH_REASONS = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def completion_id(prefix: str = "chatcmpl") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def finish_reason(reason: str | None) -> str | None:
    return None if reason is None else FINISH_REASONS.get(reason, reason)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _logprobs(tokens: Sequence[GeneratedToken]) -> dict[str, Any]:
    # Backends report the chosen token's logprob only, so `top_logprobs` stays empty.
    return {
        "content": [
            {"token": t.text, "logprob": t.logprob, "top_logprobs": []} for t in tokens if not t.special
        ]
    }


def chat_completion(
    generations: Generation | Sequence[Generation],
    *,
    model: str,
    id: str | None = None,
    created: int | None = None,
    logprobs: bool = False,
    system_fingerprint: str = SYSTEM_FINGERPRINT,
    stop: Sequence[str] = (),
) -> dict[str, Any]:
    """One `chat.completion`; several generations (`n` > 1) become several choices.

    OpenAI leaves a matched stop string out of the content (TGI keeps it): `stop` cuts it off.
    """
    gens = [generations] if isinstance(generations, Generation) else list(generations)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": cut_at_stop(gen.text, stop)},
            "logprobs": _logprobs(gen.tokens) if logprobs else None,
            "finish_reason": finish_reason(gen.finish_reason),
        }
        for i, gen in enumerate(gens)
    ]
    return {
        "id": id or completion_id(),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "system_fingerprint": system_fingerprint,
        "choices": choices,
        "usage": usage(gens[0].prompt_tokens if gens else 0, sum(len(gen.tokens) for gen in gens)),
    }


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (not including) the first stop string in it."""
    found = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(found)] if found else text


def _held_back(text: str, stop: Sequence[str]) -> int:
    """How many trailing characters of `text` could still grow into a stop string (so must not be sent yet)."""
    longest = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:k]):
                longest = k
                break
    return longest


class ChatStreamEncoder:
    """Turns one request's StreamSteps into `chat.completion.chunk` dicts sharing one id and timestamp."""

    object_name = "chat.completion.chunk"

    def __init__(
        self,
        *,
        model: str,
        id: str | None = None,
        created: int | None = None,
        prompt_tokens: int = 0,
        include_usage: bool = False,
        logprobs: bool = False,
        system_fingerprint: str = SYSTEM_FINGERPRINT,
        stop: Sequence[str] = (),
    ) -> None:
        self.model = model
        # With stop strings, text that may be the start of one is held back until it is known not to be.
        self.stop = [s for s in stop if s]
        self.pending = ""
        self.stopped = False
        self.id = id or completion_id()
        self.created = created if created is not None else int(time.time())
        self.prompt_tokens = prompt_tokens
        self.include_usage = include_usage
        self.logprobs = logprobs
        self.system_fingerprint = system_fingerprint
        self.completion_tokens = 0
        self.finished = False

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "object": self.object_name,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.system_fingerprint,
            "choices": choices,
        }
        if self.include_usage:
            out["usage"] = None  # OpenAI sends null on every chunk but the last when usage is asked for
        return out

    def _choice(
        self, delta: dict[str, Any], reason: str | None = None, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": reason}

    def start(self) -> dict[str, Any]:
        """The first chunk: the assistant role with empty content, before any token."""
        return self._chunk([self._choice({"role": "assistant", "content": ""})])

    def opening(self) -> list[dict[str, Any]]:
        """The chunks sent before the first token."""
        return [self.start()]

    def _release(self, text: str, *, final: bool) -> str:
        """The part of the text so far that can be sent now: never a stop string, nor what may start one."""
        if not self.stop:
            return text
        self.pending += text
        cut = cut_at_stop(self.pending, self.stop)
        if len(cut) < len(self.pending):
            self.pending, self.stopped = "", True
            return cut
        keep = 0 if final else _held_back(self.pending, self.stop)
        ready, self.pending = (
            self.pending[: len(self.pending) - keep],
            self.pending[len(self.pending) - keep :],
        )
        return ready

    def encode(self, step: StreamStep, *, prompt_tokens: int | None = None) -> list[dict[str, Any]]:
        """The chunks for `step`: its content (none for a special token such as EOS), then after the last
        step the finish chunk and, if asked for, the usage chunk."""
        if self.finished:
            raise RuntimeError("This stream already sent its final chunk.")
        if prompt_tokens is not None:
            self.prompt_tokens = prompt_tokens
        self.completion_tokens += 1
        chunks = []
        if step.token.text and not step.token.special and not self.stopped:
            text = self._release(step.token.text, final=step.finish_reason is not None)
            if text:
                logprobs = _logprobs([step.token]) if self.logprobs else None
                chunks.append(self._chunk([self._choice({"content": text}, None, logprobs)]))
        elif step.finish_reason is not None and self.pending and not self.stopped:
            chunks.append(self._chunk([self._choice({"content": self.pending})]))
            self.pending = ""
        if step.finish_reason is not None:
            self.finished = True
            chunks.append(self._chunk([self._choice({}, finish_reason(step.finish_reason))]))
            if self.include_usage:
                chunks.append({**self._chunk([]), "usage": usage(self.prompt_tokens, self.completion_tokens)})
        return chunks


def text_completion(
    gen: Generation,
    *,
    model: str,
    echo: str = "",
    stop: Sequence[str] = (),
    id: str | None = None,
    created: int | None = None,
    system_fingerprint: str = SYSTEM_FINGERPRINT,
) -> dict[str, Any]:
    """One legacy `text_completion`; `echo` (the prompt, when the request asks for it) precedes the text."""
    choice = {
        "index": 0,
        "text": echo + cut_at_stop(gen.text, stop),
        "logprobs": None,
        "finish_reason": finish_reason(gen.finish_reason),
    }
    return {
        "id": id or completion_id("cmpl"),
        "object": "text_completion",
        "created": created if created is not None else int(time.time()),
        "model": model,
        "system_fingerprint": system_fingerprint,
        "choices": [choice],
        "usage": usage(gen.prompt_tokens, len(gen.tokens)),
    }


class CompletionStreamEncoder(ChatStreamEncoder):
    """The legacy `text_completion` stream: chat's chunks (stop strings held back, the finish reason, then the
    usage) with `text` in place of `delta`, no role chunk, and the prompt first when `echo` is asked."""

    object_name = "text_completion"

    def __init__(self, *, echo: str = "", id: str | None = None, **options: Any) -> None:
        super().__init__(id=id or completion_id("cmpl"), **options)
        self.echo = echo

    def opening(self) -> list[dict[str, Any]]:
        return [self._chunk([self._choice({"content": self.echo})])] if self.echo else []

    def _choice(
        self, delta: dict[str, Any], reason: str | None = None, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"index": 0, "text": delta.get("content", ""), "logprobs": None, "finish_reason": reason}


def error_body(message: str, error_type: str, status_code: int | None = None) -> dict[str, Any]:
    """An error in OpenAI's shape, with inferd's `error_type` beside it.

    OpenAI SDKs read `error.message`; inferd's and HF's clients read `error_type` to pick the exception.
    """
    return {
        "error": {"message": message, "type": error_type, "param": None, "code": status_code},
        "error_type": error_type,
    }


def sse(chunk: Mapping[str, Any] | str) -> bytes:
    """One event on the wire: `data: {...}\\n\\n` (or `data: [DONE]\\n\\n`)."""
    data = chunk if isinstance(chunk, str) else json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
    return encode_event(data)
