"""The request bodies of the TGI, TEI and OpenAI routes, from the tasks whose parameters they carry.

TGI's `parameters` are the text-generation task's; TEI's options are feature-extraction's; OpenAI's sampling
fields map onto text-generation parameters (protocols/openai.py, `generation_parameters`), so their bounds are
read from there. Unlike the HF routes, these protocols ignore keys they do not know (as TGI, TEI and OpenAI
do), so their bodies leave `additionalProperties` open.
"""

from __future__ import annotations

from typing import Any

from ...tasks import TASKS
from ..protocols.openai_embeddings import ENCODINGS
from ..protocols.tei import EMBED_KEYS, SIMILARITY_KEYS, TRUNCATION_KEYS
from ..protocols.tgi import STREAMING_TEXT_GENERATION, TEXT_GENERATION
from ..settings import MAX_CLIENT_BATCH_SIZE
from .hf_bodies import TEXT

_GENERATION = {p.name: p for p in TEXT_GENERATION.parameters}
_EMBEDDING = {p.name: p for p in TASKS["feature-extraction"].parameters}
_NULL = {"type": "null"}
_FLAG = {"type": ["boolean", "null"]}
# TEI and OpenAI refuse only the empty string, not white space.
_STRING = {"type": "string", "minLength": 1}


def _nullable(schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"anyOf": [schema, _NULL]}
    if description:
        out["description"] = description
    return out


def _generation(name: str) -> dict[str, Any]:
    """A text-generation parameter's schema with null allowed."""
    return _GENERATION[name].json_schema()


def _bare(name: str, source: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without its null branch and description: the value's own type."""
    schema = source[name].json_schema()
    return next(s for s in schema["anyOf"] if s != _NULL) if "anyOf" in schema else schema


def tgi_request(*, stream: bool) -> dict[str, Any]:
    task = STREAMING_TEXT_GENERATION if stream else TEXT_GENERATION
    return {
        "type": "object",
        "title": "generate_stream" if stream else "generate",
        "properties": {
            "inputs": TEXT,
            "parameters": {"anyOf": [task.parameters_schema(), _NULL]},
        },
        "required": ["inputs"],
    }


def _embedding_options(names: tuple[str, ...]) -> dict[str, Any]:
    return {name: _EMBEDDING[name].json_schema() for name in names}


TEI_EMBED: dict[str, Any] = {
    "type": "object",
    "title": "embed",
    "properties": {
        "inputs": {"anyOf": [_STRING, {"type": "array", "items": _STRING, "minItems": 1}]},
        **_embedding_options(EMBED_KEYS),
    },
    "required": ["inputs"],
}
TEI_SIMILARITY: dict[str, Any] = {
    "type": "object",
    "title": "similarity",
    "properties": {
        "inputs": {
            "type": "object",
            "properties": {
                "source_sentence": _STRING,
                "sentences": {"type": "array", "items": _STRING, "minItems": 1},
            },
            "required": ["source_sentence", "sentences"],
        },
        "parameters": _nullable({"type": "object", "properties": _embedding_options(SIMILARITY_KEYS)}),
    },
    "required": ["inputs"],
}
TEI_RERANK: dict[str, Any] = {
    "type": "object",
    "title": "rerank",
    "properties": {
        "query": _STRING,
        "texts": {"type": "array", "items": _STRING, "minItems": 1},
        "return_text": _FLAG,
        "raw_scores": _FLAG,
        **_embedding_options(TRUNCATION_KEYS),
    },
    "required": ["query", "texts"],
}
_ONE_TEXT = {"type": "array", "items": _STRING, "minItems": 1, "maxItems": 1}
TEI_PREDICT: dict[str, Any] = {
    "type": "object",
    "title": "predict",
    "description": "A text, [text], or a batch [[text], ...]; text pairs need a cross-encoder (refused).",
    "properties": {
        "inputs": {"anyOf": [_STRING, _ONE_TEXT, {"type": "array", "items": _ONE_TEXT, "minItems": 1}]},
        "raw_scores": _FLAG,
        "truncate": _FLAG,
    },
    "required": ["inputs"],
}

# OpenAI's sampling fields and what they become (openai.generation_parameters). Each value is checked
# against the text-generation parameter it maps to, so the bounds are that parameter's.
_MAX_TOKENS = _nullable(_bare("max_new_tokens", _GENERATION), "Largest number of tokens to generate.")
_SAMPLING: dict[str, Any] = {
    "max_tokens": _MAX_TOKENS,
    "max_completion_tokens": _MAX_TOKENS,
    "temperature": _nullable({"type": "number", "minimum": 0}, "0 is greedy decoding; above, sampling."),
    "top_p": _generation("top_p"),
    "seed": _generation("seed"),
    "frequency_penalty": _generation("frequency_penalty"),
    "stop": _nullable(
        {"anyOf": [{"type": "string"}, _bare("stop", _GENERATION)]}, "A stop string, or up to 4."
    ),
    "n": _nullable({"const": 1}, "Only 1."),
    "presence_penalty": _nullable({"const": 0}, "Not supported: use frequency_penalty."),
    "tools": _nullable({"type": "array", "maxItems": 0}, "Tool calls are not supported."),
    "logit_bias": _nullable({"type": "object", "maxProperties": 0}, "Not supported."),
    "response_format": _nullable(
        {"type": "object", "properties": {"type": {"const": "text"}}}, "Only {'type': 'text'}."
    ),
    "stream": _FLAG,
    "stream_options": _nullable(
        {"type": "object", "properties": {"include_usage": _FLAG}}, "include_usage: a last chunk with usage."
    ),
}
_TEXT_PART = {
    "type": "object",
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
    "required": ["type", "text"],
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"type": "string"},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}, _NULL]},
    },
    "required": ["role"],
}


def _model_field(models: list[str], placeholders: tuple[str, ...]) -> dict[str, Any]:
    """`model` in an OpenAI body: a served model, or none / a placeholder for the server's default."""
    names = [*models, *placeholders]
    return _nullable(
        {"type": "string", "enum": names} if names else {"type": "string"},
        "The model; absent, null or a placeholder (" + ", ".join(repr(p) for p in placeholders) + ") picks "
        "the server's default for the route.",
    )


def chat_request(models: list[str] | None, placeholders: tuple[str, ...]) -> dict[str, Any]:
    """/v1/chat/completions; `models` None when the path names the model (then `model` is ignored)."""
    properties: dict[str, Any] = {
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 1},
        "logprobs": _FLAG,
        **_SAMPLING,
    }
    if models is not None:
        properties["model"] = _model_field(models, placeholders)
    return {"type": "object", "title": "chat completion", "properties": properties, "required": ["messages"]}


def completion_request(models: list[str] | None, placeholders: tuple[str, ...]) -> dict[str, Any]:
    """/v1/completions: one prompt (a string, or a list of one string)."""
    properties: dict[str, Any] = {
        "prompt": {"anyOf": [_STRING, {"type": "array", "items": _STRING, "minItems": 1, "maxItems": 1}]},
        "suffix": _nullable({"const": ""}, "Not supported."),
        "best_of": _nullable({"const": 1}, "Only 1."),
        "logprobs": {"type": "null", "description": "Not supported on this route."},
        "echo": _FLAG,
        **_SAMPLING,
    }
    if models is not None:
        properties["model"] = _model_field(models, placeholders)
    return {"type": "object", "title": "completion", "properties": properties, "required": ["prompt"]}


def embeddings_request(models: list[str] | None, placeholders: tuple[str, ...]) -> dict[str, Any]:
    """/v1/embeddings: texts (token ids are refused: the models here take text)."""
    # The default --max-client-batch-size: a server started with another answers 413 past its own.
    texts = {"type": "array", "items": _STRING, "minItems": 1, "maxItems": MAX_CLIENT_BATCH_SIZE}
    properties: dict[str, Any] = {
        "input": {"anyOf": [_STRING, texts]},
        "encoding_format": _nullable({"enum": list(ENCODINGS)}),
        "dimensions": _EMBEDDING["dimensions"].json_schema(),
    }
    if models is not None:
        properties["model"] = _model_field(models, placeholders)
    return {"type": "object", "title": "embeddings", "properties": properties, "required": ["input"]}
