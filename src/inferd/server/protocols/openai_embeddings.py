"""OpenAI's embeddings: /v1/embeddings (also /embeddings, as TEI serves it) and /models/{id}/v1/embeddings.

`model` picks the model as on the chat route (none or a placeholder: the server's default feature-extraction
model). `input` is a string or a list of strings, sent to the engine as one request so its texts batch with
other requests'. Vectors are normalised as the model does by default (the default MiniLM's are unit length, as
OpenAI's are); `dimensions` keeps the first values, then normalises them again when the model normalises.
`encoding_format: "base64"`, which the openai SDK asks for unless told otherwise, is the little-endian float32
bytes of each vector.

Token-id inputs are refused with a 400: the models here take text. LangChain's OpenAIEmbeddings sends token ids
unless built with `check_embedding_ctx_length=False`, hence the hint in the message. `usage` counts tokens by
estimate (inferd.backends.base.estimate_tokens, about 4 characters a token), since the backends do not report
their tokenizer's count.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ...backends.base import estimate_tokens
from ..errors import ServerError
from ..metrics import Observation
from ..respond import JSONResponse
from ..state import AppState, endpoint
from .embeddings import check_parameters, embed
from .openai import bad, json_body, model_for

ENCODINGS = ("float", "base64")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def texts_of(body: Mapping[str, Any], model_id: str, max_inputs: int) -> list[str]:
    value = body.get("input")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise bad("`input` must be a string or a non-empty list of strings.", "input")
    if all(_is_token(x) or (isinstance(x, list) and all(map(_is_token, x))) for x in items):
        raise bad(
            f"Model {model_id} takes text, not token ids: send `input` as a string or a list of strings "
            "(LangChain's OpenAIEmbeddings sends token ids unless `check_embedding_ctx_length=False`).",
            "input",
        )
    if len(items) > max_inputs:  # OpenAI answers 400 here, where TEI and the HF routes answer 413
        raise bad(
            f"`input` has {len(items)} items; this server takes at most {max_inputs} inputs per request "
            "(--max-client-batch-size).",
            "input",
        )
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise bad(f"`input[{i}]` must be a string, got {type(text).__name__}.", "input")
        if not text:
            raise bad(f"`input[{i}]` is empty.", "input")
    return items


def parameters_of(body: Mapping[str, Any]) -> dict[str, Any]:
    dimensions = body.get("dimensions")
    if dimensions is None:
        return {}  # the model's own normalisation, as OpenAI's vectors come
    try:
        return check_parameters({"dimensions": dimensions})
    except ServerError as exc:
        raise bad(exc.message, "dimensions") from None


def encode(vector: np.ndarray, encoding: str) -> np.ndarray | str:
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    # orjson writes a float32 array itself (respond.dumps), each number in its shortest float32 form: the same
    # values as tolist() would give, without a Python float per number on the event loop.
    return np.ascontiguousarray(vector, dtype=np.float32)


@endpoint(protocol="openai")
async def embeddings(request: Request, state: AppState, obs: Observation) -> Response:
    body = await json_body(request, state, "`input`")
    model_id = model_for(request, state, body, ("feature-extraction",), "embedding")
    obs.model, obs.task = model_id, "feature-extraction"
    texts = texts_of(body, model_id, state.settings.max_client_batch_size)
    encoding = body.get("encoding_format")
    encoding = "float" if encoding is None else encoding
    if encoding not in ENCODINGS:
        raise bad(f"`encoding_format` must be one of {list(ENCODINGS)}, got {encoding!r}.", "encoding_format")
    vectors = await embed(request, state, model_id, texts, parameters_of(body))
    tokens = sum(estimate_tokens(t) for t in texts)
    data = [
        {"object": "embedding", "index": i, "embedding": encode(v, encoding)} for i, v in enumerate(vectors)
    ]
    answer = {
        "object": "list",
        "data": data,
        "model": model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    headers = obs.headers(state.settings.compute_type)
    headers["x-compute-characters"] = str(sum(map(len, texts)))
    return JSONResponse(answer, headers=headers)
