"""scikit-learn models saved with skops, for tabular-classification and tabular-regression.

Never pickle or joblib: a skops file is loaded only if every type it holds is one skops trusts by default or
one named in TRUSTED_TYPES below; anything else is refused with the offending type names. Next to the model,
`inferd-model.json` (written by the install step) names the feature columns in order, the task, the training
data, and the sha256 of `model.skops`, checked here before loading: the file is trained on the user's machine,
so its digest cannot be pinned in the catalogue. (The manifest catches corruption; the trusted-types list is
what makes loading a replaced file safe.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import file_sha256
from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

MANIFEST = "inferd-model.json"
MODEL_FILE = "model.skops"
# Types beyond skops' defaults that the models inferd trains need (HistGradientBoosting's trees).
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest, after checking the model file against the digest it records; raises ValueError."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{folder}: no {MANIFEST}; run the model install step (`make run`).")
    manifest = json.loads(manifest_path.read_text())
    expected = manifest.get("sha256", {}).get(MODEL_FILE)
    model_path = folder / MODEL_FILE
    if not expected or not model_path.is_file():
        raise ValueError(f"{folder}: {MODEL_FILE} or its digest is missing; rerun the install step.")
    actual = file_sha256(model_path)
    if actual != expected:
        raise ValueError(
            f"{model_path}: sha256 mismatch (expected {expected}, found {actual}); the file is corrupt or "
            "was replaced, refusing to load it. Rerun the install step."
        )
    return manifest


class SklearnBackend(Backend):
    name = "sklearn"

    def load(self, entry: ModelEntry, path: str) -> Model:
        import skops.io as sio

        folder = Path(path)
        manifest = read_manifest(folder)
        data = (folder / MODEL_FILE).read_bytes()
        untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
        if untrusted:
            raise ValueError(f"{folder / MODEL_FILE} holds types inferd does not trust: {sorted(untrusted)}.")
        estimator = sio.loads(data, trusted=list(TRUSTED_TYPES))
        return TabularModel(entry, estimator, manifest, len(data))


class TabularModel(Model):
    def __init__(self, entry: ModelEntry, estimator: Any, manifest: Mapping[str, Any], size: int) -> None:
        self.entry = entry
        self.estimator = estimator
        self.features: list[str] = list(manifest["features"])
        self.tasks = tuple(entry.tasks)
        self.approximations = dict(entry.approximations)
        self._size = size

    def memory_bytes(self) -> int:
        return self._size * 2

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task not in self.tasks:
            raise InputError(f"Model {self.entry.model_id} does not serve task '{task}'.")
        import numpy as np

        tables = [self._rows(table) for table in inputs]
        counts = [len(t) for t in tables]
        if not sum(counts):
            return [[] for _ in tables]
        predictions = self.estimator.predict(np.concatenate([t for t in tables if len(t)]))
        convert = float if task == "tabular-regression" else str
        out, i = [], 0
        for n in counts:
            out.append([convert(p) for p in predictions[i : i + n]])
            i += n
        return out

    def _rows(self, table: Any) -> Any:
        import numpy as np

        if isinstance(table, Mapping) and set(table) == {"data"} and isinstance(table["data"], Mapping):
            table = table["data"]  # {"data": {...}}, the community containers' shape
        if not isinstance(table, Mapping):
            raise InputError("A table is an object of columns: {column: [value, ...]}.")
        missing = [c for c in self.features if c not in table]
        unknown = [c for c in table if c not in self.features]
        if missing or unknown:
            raise InputError(
                f"Wrong columns for {self.entry.model_id}: missing {missing}, unknown {unknown}. "
                f"Expected: {self.features}."
            )
        lengths = {len(table[c]) if isinstance(table[c], list) else -1 for c in self.features}
        if len(lengths) != 1 or -1 in lengths:
            raise InputError("Every column must be a list, all of the same length.")
        rows = np.empty((lengths.pop(), len(self.features)), np.float64)
        for j, column in enumerate(self.features):
            for i, value in enumerate(table[column]):
                try:
                    rows[i, j] = float(value)
                except (TypeError, ValueError):
                    raise InputError(f"Column {column!r}, row {i}: {value!r} is not a number.") from None
                if math.isinf(rows[i, j]):
                    raise InputError(f"Column {column!r}, row {i}: {value!r} is not a finite number.")
        return rows
