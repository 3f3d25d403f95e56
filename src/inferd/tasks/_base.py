"""The shape of a task: its wire name, input kind, parameters with limits, and output type.

Every other part of inferd (both clients, the server's validation, the OpenAPI schema, the CLI flags,
the docs table and the parametrised tests) reads these objects; nothing here does I/O.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class InputKind(str, enum.Enum):
    """What a task takes as its main input. The server decodes the body into this before a backend sees it."""

    TEXT = "text"  # str (some tasks also take a list of str)
    IMAGE = "image"  # PIL.Image.Image (RGB)
    AUDIO = "audio"  # inferd.tasks.Audio
    TABLE = "table"  # dict[column, list[str]], all columns the same length
    IMAGE_QUESTION = "image-question"  # {"image": PIL.Image, "question": str}
    QUESTION_CONTEXT = "question-context"  # {"question": str, "context": str}
    TABLE_QUERY = "table-query"  # {"table": {...}, "query": str}
    SENTENCES = "sentences"  # {"source_sentence": str, "sentences": [str]}
    CONVERSATION = "conversation"  # {"text": str, "past_user_inputs": [...], "generated_responses": [...]}


class ParameterError(ValueError):
    """A task parameter has the wrong type or is out of range; the message names the parameter."""


_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


@dataclass(frozen=True)
class Param:
    """One task parameter as the wire carries it, with the limits the server enforces."""

    name: str
    type: type
    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] | None = None
    items: builtins.type | None = None  # element type when `type` is list

    def validate(self, value: Any) -> Any:
        """Return `value` (ints widened to float where a number is expected) or raise ParameterError."""
        if value is None:
            return None
        expected = self.type
        ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ParameterError(
                f"Parameter `{self.name}` must be {_TYPE_NAMES.get(expected, expected.__name__)}, got {value!r}."
            )
        if self.items is not None and any(not isinstance(v, self.items) for v in value):
            raise ParameterError(f"Parameter `{self.name}` must be a list of {self.items.__name__}.")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                f"Parameter `{self.name}` must be one of {list(self.choices)}, got {value!r}."
            )
        if self.minimum is not None:
            too_small = value <= self.minimum if self.exclusive_minimum else value < self.minimum
            if too_small:
                bound = "greater than" if self.exclusive_minimum else "at least"
                raise ParameterError(
                    f"Parameter `{self.name}` must be {bound} {self.minimum}, got {value!r}."
                )
        if self.maximum is not None and value > self.maximum:
            raise ParameterError(f"Parameter `{self.name}` must be at most {self.maximum}, got {value!r}.")
        return value

    def json_schema(self) -> dict[str, Any]:
        names = {
            bool: "boolean",
            int: "integer",
            float: "number",
            str: "string",
            list: "array",
            dict: "object",
        }
        schema: dict[str, Any] = {"type": names.get(self.type, "string"), "description": self.description}
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        if self.items is not None:
            schema["items"] = {"type": names.get(self.items, "string")}
        return schema


@dataclass(frozen=True)
class Task:
    """A task of the Inference API, defined once."""

    name: str  # HF pipeline tag, kebab-case: the wire name and the CLI name
    input_kind: InputKind
    summary: str
    output: Any  # the TypedDict (or type) one result has, as the client returns it
    example_input: Any
    example_output: Any
    parameters: tuple[Param, ...] = ()
    # feature-extraction and sentence-similarity are served under /pipeline/{task}/{model} by the hosted API
    pipeline_route: bool = False
    # the client asks for `Accept: image/png` on these (spec: TASKS_EXPECTING_IMAGES)
    returns_image: bool = False
    returns_audio: bool = False
    # parameters the wire carries at the top level of the body, next to "inputs" (TEI-style feature-extraction)
    top_level_parameters: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def python_name(self) -> str:
        return self.name.replace("-", "_")

    def param(self, name: str) -> Param:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def validate_parameters(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check every parameter against its declared type and limits; unknown names are refused."""
        if params is None:
            return {}
        if not isinstance(params, Mapping):
            raise ParameterError(f"`parameters` must be an object, got {type(params).__name__}.")
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ParameterError(
                f"Unknown parameter(s) for task '{self.name}': {unknown}. Known: {sorted(known)}."
            )
        return {k: known[k].validate(v) for k, v in params.items() if v is not None}

    def parameters_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.parameters},
            "additionalProperties": False,
        }
