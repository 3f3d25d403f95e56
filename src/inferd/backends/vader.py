"""VADER 3.3.2 sentiment: a rule-based lexicon model (not a neural network), English only.

Labels NEGATIVE / NEUTRAL / POSITIVE. The label order follows VADER's own rule on its compound score c
(c >= 0.05 positive, c <= -0.05 negative, else neutral). Scores are not probabilities: the winning sentiment
label gets |c| ** 0.2314 (so |c| = 0.05, VADER's threshold, maps to 0.5), NEUTRAL gets the rest, and the
opposite sentiment gets 0. VADER's raw neg/neu/pos proportions are not used to rank: they call most mildly
positive sentences neutral ("I am so happy with my new phone!" is 58% neutral words).
`function_to_apply` has no meaning for a rule-based model and is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

THRESHOLD = 0.05  # VADER's documented compound threshold
_EXPONENT = math.log(0.5) / math.log(THRESHOLD)


class VaderBackend(Backend):
    name = "vader"

    def load(self, entry: ModelEntry, path: str) -> Model:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        folder = Path(path)
        # The lexicons are read from the verified folder, not from wherever the package's cwd lookup lands.
        analyzer = SentimentIntensityAnalyzer(
            lexicon_file=str(folder / "vader_lexicon.txt"),
            emoji_lexicon=str(folder / "emoji_utf8_lexicon.txt"),
        )
        return VaderModel(entry, analyzer)


def vader_labels(compound: float) -> list[dict[str, Any]]:
    """Best-first labels for a VADER compound score (see the module docstring)."""
    strength = abs(compound) ** _EXPONENT if compound else 0.0
    if compound >= THRESHOLD or compound <= -THRESHOLD:
        sentiment, opposite = ("POSITIVE", "NEGATIVE") if compound > 0 else ("NEGATIVE", "POSITIVE")
        return [
            {"label": sentiment, "score": strength},
            {"label": "NEUTRAL", "score": 1.0 - strength},
            {"label": opposite, "score": 0.0},
        ]
    leaning, other = ("POSITIVE", "NEGATIVE") if compound >= 0 else ("NEGATIVE", "POSITIVE")
    return [
        {"label": "NEUTRAL", "score": 1.0 - strength},
        {"label": leaning, "score": strength},
        {"label": other, "score": 0.0},
    ]


class VaderModel(Model):
    def __init__(self, entry: ModelEntry, analyzer: Any) -> None:
        self.entry = entry
        self.analyzer = analyzer
        self.tasks = tuple(entry.tasks)
        self.approximations = dict(entry.approximations)

    def memory_bytes(self) -> int:
        return 4 << 20  # two small lexicons as dicts

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != "text-classification":
            raise InputError(f"Model {self.entry.model_id} does not serve task '{task}'.")
        top_k = parameters.get("top_k")
        out = []
        for text in inputs:
            if not isinstance(text, str):
                raise InputError("text-classification takes a string.")
            labels = vader_labels(float(self.analyzer.polarity_scores(text)["compound"]))
            out.append(labels[:top_k] if top_k else labels)
        return out
