"""text-embeddings-inference's routes (servers.md §3.1): POST /embed, /similarity, /predict and /rerank, at the
root for the server's default model of each, and under /models/{id}/ for any model.

The shapes are TEI's and so are errors, `{"error", "error_type"}` (400 for a malformed body, 422 when the model
refuses an input). As TEI does, keys a route does not know are ignored. Everything goes through
`Engine.predict`, so texts batch with every other request's.

- /embed: feature-extraction; `normalize` defaults to true as in TEI; always `[[float]]`, one vector per input.
- /similarity: the cosine of the source with each sentence from the model's normalised embeddings (as TEI
  computes it); `parameters` (`truncate`, `truncation_direction`, `prompt_name`) apply to those embeddings.
- /predict: text-classification in TEI's shape, `[{score, label}]` for one input and `[[...]]` for a batch.
  `raw_scores` asks for the model's unnormalised scores (function_to_apply "none"). A text pair `[a, b]` needs a
  cross-encoder, which no backend here serves (400 not_supported). `truncate` is accepted: these classifiers cut long texts.
- /rerank: no backend serves a cross-encoder reranker, so texts are ranked by the cosine of their embedding with
  the query's (a bi-encoder ranking, the usual first stage of retrieval): a ranking is what a caller of /rerank
  needs, and a not_supported error would give none. The answer says so in `x-inferd-approximation`. Scores are cosines in
  [-1, 1] whether or not `raw_scores` is set.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import ServerError
from ..hub import no_model_message
from ..limits import check_client_batch, read_body, unless_disconnected
from ..metrics import Observation
from ..payload import parse_body
from ..respond import JSONResponse
from ..state import AppState, endpoint
from ..waiting import waits_for_model
from .embeddings import check_parameters, embed, similarities
from .hf import approximation_headers

# The feature-extraction parameters each route takes (the OpenAPI schema reads these too).
EMBED_KEYS = ("normalize", "truncate", "truncation_direction", "prompt_name", "dimensions")
TRUNCATION_KEYS = ("truncate", "truncation_direction")
SIMILARITY_KEYS = (*TRUNCATION_KEYS, "prompt_name")
RERANK_APPROXIMATION = (
    "rerank by the cosine of {model} embeddings (a bi-encoder), not a cross-encoder reranker; "
    "scores are cosines in [-1, 1]"
)


def _model(request: Request, state: AppState, obs: Observation, *tasks: str) -> str:
    model_id = request.path_params.get("model_id") or next(
        (m for m in map(state.engine.recommended, tasks) if m), None
    )
    if not model_id:
        raise ServerError(no_model_message(tasks[0]), "not_found")
    state.engine.entry(model_id)
    obs.model, obs.task = model_id, tasks[0]
    return str(model_id)


async def _body(request: Request, state: AppState, expected: str) -> dict[str, Any]:
    parsed = parse_body(
        await read_body(request, state.settings.max_json_bytes), request.headers.get("content-type")
    )
    if parsed.kind != "json" or not isinstance(parsed.value, dict):
        raise ServerError(f"The body must be a JSON object {expected}.")
    return parsed.value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ServerError(f"`{where}` must be a string, got {type(value).__name__}.")
    if not value:
        raise ServerError(f"`{where}` is empty.")
    return value


def _texts(value: Any, where: str, limit: int) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ServerError(f"`{where}` must be a non-empty list of strings.")
    check_client_batch(len(value), limit, where)
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _picked(source: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: source[k] for k in keys if source.get(k) is not None}


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise ServerError(f"`{name}` must be a boolean.")
    return bool(value)


def _headers(state: AppState, obs: Observation, characters: int) -> dict[str, str]:
    return {**obs.headers(state.settings.compute_type), "x-compute-characters": str(characters)}


@endpoint()
async def embed_route(request: Request, state: AppState, obs: Observation) -> Response:
    """POST /embed: `{"inputs": str | [str], "normalize", ...}` -> `[[float]]`."""
    model_id = _model(request, state, obs, "feature-extraction")
    body = await _body(request, state, '{"inputs": str | [str], "normalize", "truncate", ...}')
    inputs = body.get("inputs")
    texts = (
        [_text(inputs, "inputs")]
        if isinstance(inputs, str)
        else _texts(inputs, "inputs", state.settings.max_client_batch_size)
    )
    params = check_parameters({"normalize": True, **_picked(body, EMBED_KEYS)})
    vectors = await embed(request, state, model_id, texts, params)
    headers = _headers(state, obs, sum(map(len, texts)))
    headers.update(approximation_headers(dict(state.engine.entry(model_id).approximations), obs.task))
    return JSONResponse([v.tolist() for v in vectors], headers=headers)


@endpoint()
async def similarity_route(request: Request, state: AppState, obs: Observation) -> Response:
    """POST /similarity: `{"inputs": {"source_sentence", "sentences"}, "parameters"?}` -> `[float]`."""
    model_id = _model(request, state, obs, "sentence-similarity", "feature-extraction")
    body = await _body(request, state, '{"inputs": {"source_sentence", "sentences"}}')
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        raise ServerError('`inputs` must be an object {"source_sentence": str, "sentences": [str]}.')
    source = _text(inputs.get("source_sentence"), "inputs.source_sentence")
    sentences = _texts(inputs.get("sentences"), "inputs.sentences", state.settings.max_client_batch_size)
    options = body.get("parameters")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise ServerError("`parameters` must be an object.")
    params = check_parameters(_picked(options, SIMILARITY_KEYS))
    scores = await similarities(request, state, model_id, source, sentences, params)
    return JSONResponse(scores, headers=_headers(state, obs, len(source) + sum(map(len, sentences))))


@endpoint()
async def rerank_route(request: Request, state: AppState, obs: Observation) -> Response:
    """POST /rerank: `{"query", "texts", "return_text"?, ...}` -> `[{"index", "score", "text"?}]`, best first."""
    model_id = _model(request, state, obs, "feature-extraction", "sentence-similarity")
    obs.task = "rerank"
    body = await _body(request, state, '{"query": str, "texts": [str]}')
    query = _text(body.get("query"), "query")
    texts = _texts(body.get("texts"), "texts", state.settings.max_client_batch_size)
    return_text = _flag(body, "return_text")
    _flag(body, "raw_scores")  # checked, then moot: cosines either way (see the module's docstring)
    params = check_parameters(_picked(body, TRUNCATION_KEYS))
    scores = await similarities(request, state, model_id, query, texts, params)
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    ranks = [{"index": i, "score": scores[i], **({"text": texts[i]} if return_text else {})} for i in order]
    headers = _headers(state, obs, len(query) + sum(map(len, texts)))
    headers.update(approximation_headers({"rerank": RERANK_APPROXIMATION.format(model=model_id)}, "rerank"))
    return JSONResponse(ranks, headers=headers)


def predict_inputs(value: Any, model_id: str) -> tuple[list[str], bool]:
    """TEI's `inputs`: a string, `[text]`, a pair `[a, b]`, or a batch `[[text], [a, b], ...]`; (texts, batch)."""

    def one(item: list[Any], where: str) -> str:
        if len(item) == 2 and all(isinstance(x, str) for x in item):
            raise ServerError(
                f"`{where}` is a text pair: model {model_id} classifies single texts, and pairs need a "
                "cross-encoder, which this server does not serve.",
                "not_supported",
            )
        if len(item) != 1:
            raise ServerError(f"`{where}` must hold one text, or two for a pair; it has {len(item)}.")
        return _text(item[0], f"{where}[0]")

    if isinstance(value, str):
        return [_text(value, "inputs")], False
    if isinstance(value, list) and value and not isinstance(value[0], list):
        return [one(value, "inputs")], False
    if isinstance(value, list) and value:
        for i, item in enumerate(value):
            if not isinstance(item, list):
                raise ServerError(f"`inputs[{i}]` must be a list: a batch is [[text], [text], ...].")
        return [one(item, f"inputs[{i}]") for i, item in enumerate(value)], True
    raise ServerError("`inputs` must be a string, a pair [str, str], or a batch [[str], [str], ...].")


def _predictions(labels: Any) -> list[dict[str, Any]]:
    items = [{"score": float(x["score"]), "label": str(x["label"])} for x in labels]
    return sorted(items, key=lambda x: -x["score"])


@endpoint()
async def predict_route(request: Request, state: AppState, obs: Observation) -> Response:
    """POST /predict: `{"inputs", "raw_scores"?, "truncate"?}` -> `[{"score", "label"}]` (a batch: `[[...]]`)."""
    model_id = _model(request, state, obs, "text-classification")
    body = await _body(request, state, '{"inputs": str | [str, str] | [[str], ...]}')
    texts, batched = predict_inputs(body.get("inputs"), model_id)
    check_client_batch(len(texts), state.settings.max_client_batch_size, "inputs")
    params = {"function_to_apply": "none"} if _flag(body, "raw_scores") else {}
    _flag(body, "truncate")
    work = state.engine.predict(
        model_id, "text-classification", texts, params, wait_for_model=waits_for_model(request)
    )
    results = await unless_disconnected(request, work, state.settings.request_timeout_s)
    answers = [_predictions(r) for r in results]
    headers = _headers(state, obs, sum(map(len, texts)))
    headers.update(approximation_headers(dict(state.engine.entry(model_id).approximations), obs.task))
    return JSONResponse(answers if batched else answers[0], headers=headers)
