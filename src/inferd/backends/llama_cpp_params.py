"""TGI generation parameters for llama.cpp: which ones are honoured, their resolution, and the sampler chain."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# TGI's GenerateParameters that this backend honours; the server refuses the others (`model_kwargs` 400).
# `details` and `return_full_text` shape the answer and are the protocol's.
# `_logprobs` (private, set by the protocols, never by clients: the task's validation refuses unknown names):
# false when the answer shows no token logprobs (OpenAI without `logprobs`, TGI non-streaming without `details`),
# so that the log-softmax over the vocabulary is skipped at every step and the tokens carry logprob None.
LOGPROBS = "_logprobs"
SUPPORTED_PARAMETERS = frozenset(
    {
        LOGPROBS,
        "do_sample",
        "frequency_penalty",
        "max_new_tokens",
        "repetition_penalty",
        "seed",
        "stop",
        "temperature",
        "top_k",
        "top_p",
        "truncate",
        "typical_p",
    }
)
# Also understood inside predict() (pipeline-style tasks and generate_parameters).
PIPELINE_ONLY = frozenset({"max_time"})


@dataclass
class GenerationParams:
    """TGI parameters, resolved once per request."""

    max_new_tokens: int | None
    sample: bool
    temperature: float
    top_k: int
    top_p: float
    typical_p: float
    repetition_penalty: float
    frequency_penalty: float
    seed: int | None
    stop: tuple[str, ...]
    truncate: int | None
    max_time: float | None
    logprobs: bool = True

    @classmethod
    def parse(cls, parameters: Mapping[str, Any]) -> GenerationParams:
        def g(name: str) -> Any:
            return parameters.get(name)

        temperature = g("temperature")
        top_k, top_p, typical_p = g("top_k"), g("top_p"), g("typical_p")
        # TGI samples when asked to, or when a warper is set (server/text_generation_server/utils/tokens.py).
        warpers = (
            temperature not in (None, 1.0)
            or bool(top_k)
            or (top_p is not None and top_p < 1.0)
            or (typical_p is not None and typical_p < 1.0)
        )
        sample = (bool(g("do_sample")) or warpers) and temperature != 0
        stop = g("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(s for s in stop if s)
        seed = g("seed")
        if sample and seed is None:
            seed = random.getrandbits(32)
        return cls(
            max_new_tokens=None if g("max_new_tokens") is None else int(g("max_new_tokens")),
            sample=sample,
            temperature=1.0 if temperature is None else float(temperature),
            top_k=int(top_k or 0),
            top_p=1.0 if top_p is None else float(top_p),
            typical_p=1.0 if typical_p is None else float(typical_p),
            repetition_penalty=float(g("repetition_penalty") or 1.0),
            frequency_penalty=float(g("frequency_penalty") or 0.0),
            seed=None if seed is None else int(seed),
            stop=stop,
            truncate=None if g("truncate") is None else int(g("truncate")),
            max_time=None if g("max_time") is None else float(g("max_time")),
            logprobs=g(LOGPROBS) is not False,
        )


def build_sampler(p: GenerationParams, n_vocab: int, n_ctx: int, prompt_ids: list[int]) -> Any:
    """A llama.cpp sampler chain doing what TGI does with these parameters."""
    from llama_cpp._internals import LlamaSampler

    s = LlamaSampler()
    if p.repetition_penalty != 1.0 or p.frequency_penalty:
        s.add_penalties(
            n_vocab=n_vocab,
            penalty_last_n=n_ctx,
            penalty_repeat=p.repetition_penalty,
            penalty_freq=p.frequency_penalty,
            penalty_present=0.0,
        )
        for token in prompt_ids:  # TGI penalises the prompt's tokens too
            s.accept(token)
    if not p.sample:
        s.add_greedy()
        return s
    # TGI's warper order: temperature, top-k, top-p, typical.
    s.add_temp(p.temperature)
    if p.top_k > 0:
        s.add_top_k(p.top_k)
    if p.top_p < 1.0:
        s.add_top_p(p.top_p, 1)
    if p.typical_p < 1.0:
        s.add_typical(p.typical_p, 1)
    s.add_dist((p.seed or 0) % 2**32)  # llama.cpp seeds are 32-bit
    return s
