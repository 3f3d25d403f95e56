"""One prompt being continued by llama.cpp: the state both decoding paths share.

The one-stream path (llama_cpp.LlamaCppModel) and the batched one (llama_cpp_batch.BatchedStreams) both advance a
`LlamaSequence`; it lives below both so that neither has to import the other's module for its type.
"""

from __future__ import annotations

import codecs
import time
from typing import Any

from .llama_cpp_params import GenerationParams


class LlamaSequence:
    """One prompt being continued: its tokens (prompt + generated), sampler and decoded text."""

    def __init__(
        self, prompt_ids: list[int], max_new_tokens: int, params: GenerationParams, sampler: Any
    ) -> None:
        self.tokens = prompt_ids
        self.n_prompt = len(prompt_ids)
        self.max_new_tokens = max_new_tokens
        self.params = params
        self.sampler = sampler
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = ""
        self.generated = 0
        self.deadline = None if params.max_time is None else time.monotonic() + params.max_time
