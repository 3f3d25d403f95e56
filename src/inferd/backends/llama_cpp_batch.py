"""Decoding several streams together in one llama.cpp context (issue 5): `StreamBatch` for llama.cpp.

Each stream gets its own sequence id in a unified KV cache; one `llama_decode` per step carries the next token of
every running stream plus prompt chunks of new ones (running streams first, so a long prompt never stalls them).
The engine drives it from the model's thread (server/generation.py, StreamScheduler):

    batch = model.batched(max_streams=8)
    sid = batch.add(prompt, parameters)       # InputError now for a bad request; waits for a free slot
    while batch:
        for sid, step in batch.step(): ...     # one StreamStep per stream that produced a token
    batch.cancel(sid)                          # its consumer left: its slot is freed at once

Prefix reuse: a sequence id whose stream ended keeps its KV cells (`_cached`: the tokens they hold). A new stream
takes the longest common prompt prefix found in a free id's cells or a running stream's (llama_memory_seq_cp shares
cells across sequence ids, it copies nothing) and evaluates only the rest: chat prompts all start with the same
template and system prompt. Cached cells are dropped, oldest first, when live streams need the room.
`prompt_tokens_evaluated` / `prompt_tokens_reused` count prompt tokens decoded and taken from the cache.

Fairness (issue 10): the cache is shared, and a stream reserves its prompt plus `max_new_tokens` cells when it is
admitted, so one stream asking for 4050 new tokens used to hold the whole 4096-cell cache and every other stream
waited for it. Now a stream may reserve at most `STREAM_SHARE` of the cache: a longer `max_new_tokens` is cut to
fit (its finish reason is then "length"), but never below `MIN_NEW_TOKENS` (a long prompt still gets an answer).
A stream that still cannot be admitted within `admit_wait_s` ends with `Busy` (the server answers 429 with
Retry-After) instead of waiting out the request timeout.

Greedy text can differ from the one-stream path when two tokens are nearly tied: other batch shapes take other
kernels, so logits differ in late decimals.

With `solo` (the entry option `solo_stream`, off by default), a stream that arrives when no other is running is
decoded in the model's own context instead, which keeps plain attention, while the shared context uses flash
attention: on CPU flash attention skips the other streams' cells (8 streams: +28 % at 512 tokens) but is slower
for one sequence past a few hundred tokens (one stream, 512 tokens: 116 against 134 tok/s for the raw call).
Streams arriving while it runs go to the shared context; each step decodes both, so a burst decodes as 1 + n.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .base import Busy, InputError, StreamStep
from .llama_cpp_sequence import LlamaSequence

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence


class SequenceModel(Protocol):
    """What batching needs of the model (llama_cpp.LlamaCppModel): its weights, and how it starts a sequence and
    turns a sampled token into a stream step. A protocol, so that this module does not import the model's."""

    _llm: Any

    @property
    def context_length(self) -> int: ...

    def _start(self, prompt: str, parameters: Mapping[str, Any]) -> LlamaSequence: ...

    def _token_logprob(self, seq: LlamaSequence, logits_ptr: Any, token: int) -> float | None: ...

    def _emit(self, seq: LlamaSequence, token: int, logprob: float | None) -> StreamStep: ...

    def _step(self, seq: LlamaSequence) -> tuple[int, float | None]: ...


# The largest part of the shared KV cache one stream may reserve (prompt + max_new_tokens), and the fewest new
# tokens a stream is cut to when its prompt alone takes that share.
STREAM_SHARE = 0.5
MIN_NEW_TOKENS = 256
# How long a stream waits for KV cells before it is refused (429): well under the request timeout.
ADMIT_WAIT_S = 10.0


@dataclass
class _Slot:
    sid: int
    seq: LlamaSequence
    seq_id: int = -1  # -1 while waiting for a free sequence id
    fed: int = 0  # tokens of seq.tokens already in the KV cache
    out: int = -1  # batch index of this stream's logits in the current step, -1 if none
    added: float = field(default_factory=time.monotonic)


class BatchedStreams:
    def __init__(
        self,
        model: SequenceModel,
        max_streams: int = 8,
        n_ctx: int | None = None,
        admit_wait_s: float = ADMIT_WAIT_S,
        solo: bool = False,
        flash_attn: bool | None = None,
    ) -> None:
        """`solo`: a stream arriving alone runs in the model's own context (see the module's docstring).
        `flash_attn`: for the shared context (None: as the model's own)."""
        import llama_cpp
        from llama_cpp import _internals

        self._model = model
        self._lib = llama_cpp
        llm = model._llm
        # The settings the model was loaded with (threads, flash attention: see LlamaCppBackend.load), not llama.cpp's
        # defaults, so that `options` in models.toml reach the context that serves the streams.
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        if flash_attn is not None:
            params.flash_attn_type = 1 if flash_attn else 0
        params.n_ctx = n_ctx or model.context_length  # shared by all streams (unified KV cache)
        params.n_batch = params.n_ubatch = self._n_batch = 512
        params.n_seq_max = max_streams
        params.kv_unified = True
        params.no_perf = True
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self._n_ctx = int(params.n_ctx)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._free = list(range(max_streams))  # free sequence ids, least recently used first
        self._cached: dict[int, list[int]] = {}  # free sequence id -> the tokens its KV cells still hold
        self.prompt_tokens_evaluated = 0
        self.prompt_tokens_reused = 0
        self._live: dict[int, _Slot] = {}
        self._waiting: deque[_Slot] = deque()
        self._next = 0
        self._admit_wait_s = admit_wait_s
        self._step_s = 0.05  # seconds per decode step, averaged: how long a refused stream should wait
        self._solo_allowed = solo
        self._solo: _Slot | None = None  # the stream decoded in the model's own context

    def __bool__(self) -> bool:
        return bool(self._live or self._waiting or self._solo)

    def add(self, prompt: str, parameters: Mapping[str, Any]) -> int:
        seq = self._model._start(prompt, parameters)
        if seq.n_prompt + seq.max_new_tokens > self._n_ctx:
            raise InputError(f"`inputs` tokens + `max_new_tokens` must be <= {self._n_ctx}.")
        share = int(self._n_ctx * STREAM_SHARE)
        seq.max_new_tokens = min(seq.max_new_tokens, max(share - seq.n_prompt, MIN_NEW_TOKENS))
        self._next += 1
        if self._solo_allowed and not (self._live or self._waiting or self._solo):
            self._solo = _Slot(self._next, seq)
        else:
            self._waiting.append(_Slot(self._next, seq))
        return self._next

    def cancel(self, sid: int) -> None:
        if self._solo is not None and self._solo.sid == sid:
            self._solo = None  # the model's context keeps its cells: the next prompt may share their prefix
            return
        slot = self._live.get(sid)
        if slot is not None:
            self._release(slot)
        else:
            self._waiting = deque(s for s in self._waiting if s.sid != sid)

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()

    def step(self, hold: Collection[int] = ()) -> list[tuple[int, StreamStep | Exception]]:
        """Decode once for all live streams but those in `hold`; the steps of those that got a token."""
        early = self._step_solo(hold) + self._admit()  # the solo stream's step, and streams refused cells
        started = time.monotonic()
        batch, n = self._batch, 0
        # Streams with the fewest tokens to feed first: running streams (one token) before prompt prefills.
        for slot in sorted(self._live.values(), key=lambda s: len(s.seq.tokens) - s.fed):
            slot.out = -1
            if slot.sid in hold:  # its consumer is behind: it keeps its KV cells and waits
                continue
            chunk = slot.seq.tokens[slot.fed : slot.fed + self._n_batch - n]
            for k, token in enumerate(chunk):
                batch.token[n] = token
                batch.pos[n] = slot.fed + k
                batch.seq_id[n][0] = slot.seq_id
                batch.n_seq_id[n] = 1
                batch.logits[n] = False
                n += 1
            self.prompt_tokens_evaluated += max(0, min(slot.fed + len(chunk), slot.seq.n_prompt) - slot.fed)
            slot.fed += len(chunk)
            if chunk and slot.fed == len(slot.seq.tokens):
                batch.logits[n - 1] = True
                slot.out = n - 1
        if n == 0:
            return early
        batch.n_tokens = n
        code = self._lib.llama_decode(self._ctx.ctx, batch)
        if code != 0:
            for slot in self._live.values():  # what their cells hold is unknown now: never reuse them
                self._ctx.kv_cache_seq_rm(slot.seq_id, -1, -1)
                slot.fed = 0
            raise RuntimeError(f"llama_decode returned {code}")
        steps: list[tuple[int, StreamStep | Exception]] = list(early)
        for slot in [s for s in self._live.values() if s.out >= 0]:
            token = int(slot.seq.sampler.sample(self._ctx, slot.out))
            logits = self._lib.llama_get_logits_ith(self._ctx.ctx, slot.out)
            logprob = self._model._token_logprob(slot.seq, logits, token)
            slot.seq.tokens.append(token)
            step = self._model._emit(slot.seq, token, logprob)
            steps.append((slot.sid, step))
            if step.finish_reason:
                self._release(slot)
        self._step_s = 0.9 * self._step_s + 0.1 * (time.monotonic() - started)
        return steps

    def _step_solo(self, hold: Collection[int]) -> list[tuple[int, StreamStep | Exception]]:
        slot = self._solo
        if slot is None or slot.sid in hold:
            return []
        try:
            step = self._model._emit(slot.seq, *self._model._step(slot.seq))
        except Exception as exc:  # its own context failed: this stream ends, the shared one goes on
            self._solo = None
            return [(slot.sid, exc)]
        if step.finish_reason:
            self._solo = None
        return [(slot.sid, step)]

    def _admit(self) -> list[tuple[int, StreamStep | Exception]]:
        """Give waiting streams their sequence ids while their cells fit; refuse those that waited too long."""
        reserved = sum(s.seq.n_prompt + s.seq.max_new_tokens for s in self._live.values())
        while self._waiting and self._free:
            seq = self._waiting[0].seq
            need = seq.n_prompt + seq.max_new_tokens
            if self._live and reserved + need > self._n_ctx:
                return self._refuse_late()  # its KV cells are not free yet: it waits for a stream to finish
            slot = self._waiting.popleft()
            self._place(slot)
            self._live[slot.sid] = slot
            reserved += need
            # Cached cells count as if none were shared (an upper bound): drop the oldest until all fits.
            for seq_id in list(self._free):
                if reserved + sum(map(len, self._cached.values())) <= self._n_ctx:
                    break
                if self._cached.pop(seq_id, None) is not None:
                    self._ctx.kv_cache_seq_rm(seq_id, -1, -1)
        return []

    def _refuse_late(self) -> list[tuple[int, StreamStep | Exception]]:
        """Waiting streams past `admit_wait_s`, ended with Busy: a 429 now rather than a 504 after the timeout."""
        now = time.monotonic()
        late = [s for s in self._waiting if now - s.added >= self._admit_wait_s]
        if not late:
            return []
        self._waiting = deque(s for s in self._waiting if now - s.added < self._admit_wait_s)
        soonest = min((s.seq.max_new_tokens - s.seq.generated for s in self._live.values()), default=1)
        busy = Busy("its KV cache is full with other streams; retry later.", soonest * self._step_s)
        return [(s.sid, busy) for s in late]

    def _place(self, slot: _Slot) -> None:
        """Give `slot` a free sequence id holding the longest prefix of its prompt that the cache has."""
        prompt = slot.seq.tokens[: slot.seq.n_prompt - 1]  # the last prompt token is decoded: its logits
        best, src, dst = 0, -1, -1
        for seq_id in self._free:
            n = _common_prefix(prompt, self._cached.get(seq_id, ()))
            if n > best:
                best, src, dst = n, seq_id, seq_id
        for live in self._live.values():
            n = _common_prefix(prompt, live.seq.tokens[: live.fed])
            if n > best:
                best, src = n, live.seq_id
        if dst < 0:  # no free id holds the best prefix: an empty one, else the least recently used
            dst = next((i for i in self._free if i not in self._cached), self._free[0])
        self._free.remove(dst)
        self._cached.pop(dst, None)
        # A partial removal can fail (recurrent models' state is not per position): then nothing is reused.
        if src != dst or not self._ctx.kv_cache_seq_rm(dst, best, -1):
            self._ctx.kv_cache_seq_rm(dst, -1, -1)
            if src == dst or src < 0:
                best = 0
            else:
                self._ctx.kv_cache_seq_cp(src, dst, 0, best)
        slot.seq_id, slot.fed = dst, best
        self.prompt_tokens_reused += best

    def _release(self, slot: _Slot) -> None:
        """Free its sequence id; its KV cells stay, for a later prompt sharing a prefix."""
        del self._live[slot.sid]
        if slot.fed:
            self._cached[slot.seq_id] = slot.seq.tokens[: slot.fed]
        else:
            self._ctx.kv_cache_seq_rm(slot.seq_id, -1, -1)
        self._free.append(slot.seq_id)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if len(differ) else n
