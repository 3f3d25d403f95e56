"""spaCy pipelines for token-classification (named entities), in the Hugging Face `entity_group` shape.

Only the `ner` component is loaded (en_core_web_sm's NER has its own tok2vec, so the tagger, parser and
lemmatizer are left out: same entities, half the time). spaCy gives no per-entity confidence, so every
`score` is 1.0: it means "found", not a probability. Entities are whole spans already, so every
`aggregation_strategy` gives the same result; `stride` is accepted and ignored (spaCy takes long texts whole,
up to `nlp.max_length` characters).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

_NOT_NER = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]


class SpacyBackend(Backend):
    name = "spacy"

    def load(self, entry: ModelEntry, path: str) -> Model:
        import spacy

        exclude = list(entry.options.get("exclude", _NOT_NER))
        nlp = spacy.load(path, exclude=exclude)
        if "ner" not in nlp.pipe_names:
            raise ValueError(f"Model {entry.model_id}: the spaCy pipeline at {path} has no 'ner' component.")
        return SpacyNerModel(entry, nlp)


class SpacyNerModel(Model):
    def __init__(self, entry: ModelEntry, nlp: Any) -> None:
        self.entry = entry
        self.nlp = nlp
        self.tasks = tuple(entry.tasks)
        self.approximations = dict(entry.approximations)
        self.labels = tuple(nlp.get_pipe("ner").labels)
        self._lock = threading.Lock()  # a Language object is not documented as thread-safe

    def memory_bytes(self) -> int:
        return 60 << 20  # a rough figure: 15 MB of files, loaded as arrays and vocab

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != "token-classification":
            raise InputError(f"Model {self.entry.model_id} does not serve task '{task}'.")
        texts = []
        for text in inputs:
            if not isinstance(text, str):
                raise InputError("token-classification takes a string.")
            if len(text) > self.nlp.max_length:
                raise InputError(f"Text of {len(text)} characters is longer than {self.nlp.max_length}.")
            texts.append(text)
        ignore = set(parameters.get("ignore_labels") or ())
        with self._lock:
            docs = list(self.nlp.pipe(texts))
        return [
            [
                {
                    "entity_group": ent.label_,
                    "score": 1.0,
                    "word": ent.text,
                    "start": ent.start_char,
                    "end": ent.end_char,
                }
                for ent in doc.ents
                if ent.label_ not in ignore
            ]
            for doc in docs
        ]
