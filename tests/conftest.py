"""Session-wide fixtures shared across test folders."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """`tiny_models(task) -> Path`: a random HF model folder for the task, built once per session (no hub)."""
    from fixtures.tiny_models import TinyModels

    return TinyModels(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(autouse=True)
def _fresh_huggingface_hub_text_generation_cache():
    """huggingface_hub (<1.0) remembers, process-wide, which text-generation parameters a server refused, keyed by
    the per-call `model` argument: None for every client built with an instance-level model. One test's
    `model_kwargs` 400 would then make every later test's client treat its server as non-TGI (no streaming).
    Each test starts with that third-party cache empty, as a fresh process would."""
    import sys

    common = sys.modules.get("huggingface_hub.inference._common")
    cache = getattr(common, "_UNSUPPORTED_TEXT_GENERATION_KWARGS", None)
    if isinstance(cache, dict):
        cache.clear()
    yield
