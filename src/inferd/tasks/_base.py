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
    min_items: int | None = None  # list length bounds
    max_items: int | None = None
    required: bool = False  # the task cannot run without it
    # A string is taken as its comma-separated items (v0.21 clients join `candidate_labels` so).
    comma_separated: bool = False

    def validate(self, value: Any) -> Any:
        """Return `value` (ints widened to float where a number is expected) or raise ParameterError."""
        if value is None:
            return None
        expected = self.type
        ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if expected is int and isinstance(value, float) and value.is_integer():
            value, ok = int(value), True  # JSON Schema's integers include 3.0, and so do JSON parsers' floats
        if not ok:
            raise ParameterError(
                f"Parameter `{self.name}` must be {_TYPE_NAMES.get(expected, expected.__name__)}, got {value!r}."
            )
        if self.items is not None and any(not isinstance(v, self.items) for v in value):
            raise ParameterError(f"Parameter `{self.name}` must be a list of {self.items.__name__}.")
        if self.min_items is not None and len(value) < self.min_items:
            raise ParameterError(f"Parameter `{self.name}` needs at least {self.min_items} item(s).")
        if self.max_items is not None and len(value) > self.max_items:
            raise ParameterError(f"Parameter `{self.name}` takes at most {self.max_items} items.")
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

    def _comma_separated_pattern(self) -> str:
        """The string form: once split on commas and stripped, between min_items (at least one) and max_items
        items that are not blank. Each item after the first starts at a comma, so the regex cannot backtrack
        over the ways of cutting one item in pieces."""
        item = r"[\s,]*[^,\s\x00][^,\x00]*"
        low = max(self.min_items or 1, 1) - 1
        high = "" if self.max_items is None else str(self.max_items - 1)
        return rf"^{item}(?:,{item}){{{low},{high}}}(?:,[\s,]*)?$"

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the values `validate` accepts: null means "the default", as clients send it."""
        value: dict[str, Any] = {"type": _JSON_TYPES.get(self.type, "string")}
        if self.minimum is not None:
            value["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            value["maximum"] = self.maximum
        if self.choices is not None:
            value["enum"] = list(self.choices)
        if value["type"] == "string" and self.choices is None:
            value["pattern"] = NO_NUL
        if self.items is not None:
            value["items"] = {"type": _JSON_TYPES.get(self.items, "string")}
            if self.items is str:
                value["items"]["pattern"] = NO_NUL
        if self.min_items is not None:
            value["minItems"] = self.min_items
        if self.max_items is not None:
            value["maxItems"] = self.max_items
        if self.comma_separated:
            value = {"anyOf": [value, {"type": "string", "pattern": self._comma_separated_pattern()}]}
        if self.required:
            return {**value, "description": self.description}
        return {"anyOf": [value, {"type": "null"}], "description": self.description}


# The server refuses a NUL character in any text of a request (C libraries under the models stop reading at it).
NO_NUL = r"^[^\x00]*$"
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


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
    # one input per request: a list in `inputs` is refused (the answer is one image, one audio, one text)
    single_input: bool = False
    # keys some clients put in `parameters` that carry nothing here: accepted and dropped
    ignored_parameters: tuple[str, ...] = ()
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
            params = {}
        if not isinstance(params, Mapping):
            raise ParameterError(f"`parameters` must be an object, got {type(params).__name__}.")
        known = {p.name: p for p in self.parameters}
        params = {k: v for k, v in params.items() if k not in self.ignored_parameters}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ParameterError(
                f"Unknown parameter(s) for task '{self.name}': {unknown}. Known: {sorted(known)}."
            )
        for p in self.parameters:
            if p.comma_separated and isinstance(params.get(p.name), str):
                params[p.name] = [item.strip() for item in params[p.name].split(",") if item.strip()]
        valid = {k: known[k].validate(v) for k, v in params.items() if v is not None}
        missing = [p.name for p in self.parameters if p.required and p.name not in valid]
        if missing:
            raise ParameterError(
                f"Task '{self.name}' needs `parameters.{missing[0]}`: {known[missing[0]].description}"
            )
        return valid

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON Schema of `parameters`, as `validate_parameters` checks it."""
        properties = {p.name: p.json_schema() for p in self.parameters}
        properties.update(
            {name: {"description": "Accepted and ignored."} for name in self.ignored_parameters}
        )
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [p.name for p in self.parameters if p.required]
        if required:
            schema["required"] = required
        return schema
