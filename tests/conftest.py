"""Session-wide fixtures shared across test folders."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """`tiny_models(task) -> Path`: a random HF model folder for the task, built once per session (no hub)."""
    from fixtures.tiny_models import TinyModels

    return TinyModels(tmp_path_factory.mktemp("tiny-models"))
