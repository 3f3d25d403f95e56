"""Default models of the 'text' family: catalogue entries and the install step for files not on PyPI."""

from __future__ import annotations

from pathlib import Path

from . import ModelEntry

ENTRIES: tuple[ModelEntry, ...] = ()


def install(home: Path) -> None:
    """Prepare what the entries need under `home` (npm files, trained models...). Idempotent."""
    return None
