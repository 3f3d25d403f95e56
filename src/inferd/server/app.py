"""The ASGI app: every route of `inferd serve` over one engine.

    app = create_app(Engine(default_catalogue()), ServerSettings(api_key="secret"))

Tests run it in process (httpx.ASGITransport) or on uvicorn. Model ids contain "/", so routes that end in a
fixed suffix (/generate, /v1/chat/completions, /embed, /pipeline/{task}, /info) come before the bare /models/{id}.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match, Route

from . import health, hub, playground
from .errors import ServerError
from .metrics import Observation
from .middleware import http_middleware
from .openapi import SWAGGER_HTML, build_openapi
from .protocols import (
    hf,
    openai,
    openai_audio,
    openai_completions,
    openai_embeddings,
    openai_images,
    tei,
    tgi,
)
from .respond import JSONResponse, error_response, openai_error_response
from .settings import ServerSettings
from .state import AppState, Engine, endpoint

_HTTP_ERRORS = {404: "not_found", 405: "bad_request", 413: "payload_too_large"}
# text-embeddings-inference's routes, at the root (the default model) and under /models/{id}.
_TEI = {
    "embed": tei.embed_route,
    "similarity": tei.similarity_route,
    "predict": tei.predict_route,
    "rerank": tei.rerank_route,
}


async def _openapi(request: Request) -> Response:
    state: AppState = request.app.state.inferd
    entries = state.engine.entries()
    models = tuple(e.model_id for e in entries)  # models found in the HF cache since: a new schema
    cached = state.cache.get("openapi")
    if cached is None or cached[0] != models:
        settings = state.settings
        cached = (models, build_openapi(entries, api_key=bool(settings.api_key), docs=settings.docs))
        state.cache["openapi"] = cached
    return JSONResponse(cached[1])


async def _docs(request: Request) -> Response:
    return HTMLResponse(SWAGGER_HTML)


@endpoint()
async def _root_inference(request: Request, state: AppState, obs: Observation) -> Response:
    """POST / (InferenceClient(base_url=...) of a one-model server): the only model, if there is one."""
    entries = state.engine.entries()
    if len(entries) != 1:
        raise ServerError(
            f"This server has {len(entries)} models: POST to /models/<model id> instead of /.", "not_found"
        )
    request.scope["path_params"] = {**request.path_params, "model_id": entries[0].model_id}
    return await hf.inference(request)


def routes(settings: ServerSettings) -> list[Route]:
    found = [
        # public
        Route("/health", health.health, methods=["GET"]),
        Route("/metrics", hub.metrics, methods=["GET"]),
        Route("/info", hub.info_route, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/api/tasks", hub.tasks, methods=["GET"]),
        Route("/api/models", hub.models, methods=["GET"]),
        Route("/api/models/{model_id:path}", hub.model, methods=["GET"]),
        Route("/status/{model_id:path}", hub.status, methods=["GET"]),
        Route("/framework/{framework}", hub.framework, methods=["GET"]),
        Route("/models/{model_id:path}/info", hub.info_route, methods=["GET"]),
        Route("/models/{model_id:path}/health", health.model_health, methods=["GET"]),
        Route("/models/{model_id:path}", hub.status, methods=["GET"]),
        # OpenAI
        Route("/v1/models", openai.list_models, methods=["GET"]),
        Route("/v1/chat/completions", openai.chat_completions, methods=["POST"]),
        Route("/models/{model_id:path}/v1/chat/completions", openai.chat_completions, methods=["POST"]),
        Route("/v1/completions", openai_completions.completions, methods=["POST"]),
        Route("/models/{model_id:path}/v1/completions", openai_completions.completions, methods=["POST"]),
        Route("/v1/audio/transcriptions", openai_audio.transcriptions, methods=["POST"]),
        Route(
            "/models/{model_id:path}/v1/audio/transcriptions", openai_audio.transcriptions, methods=["POST"]
        ),
        Route("/v1/audio/speech", openai_audio.speech, methods=["POST"]),
        Route("/models/{model_id:path}/v1/audio/speech", openai_audio.speech, methods=["POST"]),
        Route("/v1/images/generations", openai_images.generations, methods=["POST"]),
        Route("/models/{model_id:path}/v1/images/generations", openai_images.generations, methods=["POST"]),
        Route("/v1/embeddings", openai_embeddings.embeddings, methods=["POST"]),
        Route("/embeddings", openai_embeddings.embeddings, methods=["POST"]),  # TEI's alias
        Route("/models/{model_id:path}/v1/embeddings", openai_embeddings.embeddings, methods=["POST"]),
        # TEI
        *(Route(f"/{name}", handler, methods=["POST"]) for name, handler in _TEI.items()),
        *(
            Route(f"/models/{{model_id:path}}/{name}", handler, methods=["POST"])
            for name, handler in _TEI.items()
        ),
        # TGI
        Route("/generate", tgi.generate, methods=["POST"]),
        Route("/generate_stream", tgi.generate_stream, methods=["POST"]),
        Route("/models/{model_id:path}/generate", tgi.generate, methods=["POST"]),
        Route("/models/{model_id:path}/generate_stream", tgi.generate_stream, methods=["POST"]),
        # HF Inference API (TGI compat on the model URL of text-generation models)
        Route("/models/{model_id:path}/pipeline/{task}", hf.inference, methods=["POST"]),
        Route("/pipeline/{task}/{model_id:path}", hf.inference, methods=["POST"]),
        Route("/models/{model_id:path}", hf.inference, methods=["POST"]),
        Route("/", _root_inference, methods=["POST"]),
    ]
    if settings.docs:
        found.append(Route("/docs", _docs, methods=["GET"]))
    if settings.playground:
        found.extend(playground.routes())  # last: GET only, after every inference route
    return found


def _is_openai(path: str) -> bool:
    """Paths of OpenAI routes, whose errors (even a 404 for a path no route matches) are in OpenAI's shape."""
    return path == "/embeddings" or path.endswith(
        ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
    )


def _allowed_methods(request: Request) -> list[str]:
    """The methods of the most specific route the path matches, with its twins (same path, other method).

    `/models/{model_id:path}` matches every path under /models/; `/models/{model_id:path}/embed` says more,
    so its methods are the ones `Allow` lists for /models/x/embed. Starlette lists only the first match's.
    """
    routes = [r for r in request.app.routes if isinstance(r, Route)]
    matching = [r for r in routes if r.matches(request.scope)[0] is not Match.NONE]
    if not matching:
        return []
    path = max(matching, key=lambda r: len(r.path_format)).path_format
    return sorted({m for r in routes if r.path_format == path for m in (r.methods or ())})


async def _http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        kind = _HTTP_ERRORS.get(exc.status_code, "bad_request")
        headers = dict(exc.headers or {})
        message = exc.detail
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}."
        if exc.status_code == 405:
            # RFC 9110's `Allow` lists every method of the path; Starlette's names only the first route's.
            headers["Allow"] = ", ".join(_allowed_methods(request))
            message = f"{request.method} is not allowed on {request.url.path}: use {headers['Allow']}."
        error = ServerError(message, kind, status_code=exc.status_code, headers=headers)
        return openai_error_response(error) if _is_openai(request.url.path) else error_response(error)
    return error_response(exc)


def create_app(engine: Engine, settings: ServerSettings | None = None) -> Starlette:
    """The server app over `engine`; the app's lifespan starts and closes the engine."""
    settings = settings or ServerSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.close()

    handlers: Any = {HTTPException: _http_error, Exception: _http_error}
    app = Starlette(
        routes=routes(settings),
        middleware=http_middleware(settings),
        lifespan=lifespan,
        exception_handlers=handlers,
    )
    app.state.inferd = state = AppState(engine=engine, settings=settings)
    if getattr(engine, "stats", None) is not None:
        state.metrics.watch_engine(engine.stats)  # type: ignore[attr-defined]
    return app
