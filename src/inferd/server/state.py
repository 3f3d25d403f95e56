"""What every route handler reaches through `request.app.state.inferd`, and the wrapper all routes share."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from ..catalogue import ModelEntry
from ..tasks import TASKS, InputKind
from .drain import DRAIN
from .errors import shutting_down
from .limits import ClientGone
from .metrics import Metrics, Observation
from .respond import error_response, openai_error_response
from .settings import ServerSettings


class GeneratorHandle(Protocol):
    model: Any  # inferd.backends.TextGenerator
    entry: ModelEntry

    async def generate(self, prompt: str, parameters: dict[str, Any]) -> Any: ...

    def stream(self, prompt: str, parameters: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """What the HTTP layer uses of inferd.server.engine.Engine (the model manager)."""

    preloading: bool  # start() is still loading the preload models

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def entry(self, model_id: str) -> ModelEntry: ...
    def recommended(self, task: str) -> str | None: ...
    def entries(self) -> list[ModelEntry]: ...
    def status(self, model_id: str) -> dict[str, Any]: ...
    def preloads(self) -> dict[str, dict[str, Any]]: ...
    async def predict(
        self,
        model_id: str,
        task: str,
        inputs: list[Any],
        parameters: dict[str, Any],
        *,
        wait_for_model: bool = False,
    ) -> list[Any]: ...
    async def generator(self, model_id: str, *, wait_for_model: bool = False) -> Any: ...


_MEDIA = (InputKind.IMAGE, InputKind.AUDIO, InputKind.IMAGE_QUESTION)
UNKNOWN = "unknown"  # the metrics label of every model id or task name this server does not have


@dataclass
class AppState:
    engine: Engine
    settings: ServerSettings
    metrics: Metrics = field(default_factory=Metrics)
    cache: dict[str, Any] = field(default_factory=dict)  # built once: openapi schema...

    def metrics_model(self, model_id: str) -> str:
        """The model label of a request's metrics: its id if this server has the model, else "unknown".

        Ids come from the URL, so anyone (even without the API key) could otherwise add a series per request:
        20,000 made-up ids grew /metrics from 19 KB to 111 MB.
        """
        if not model_id or any(e.model_id == model_id for e in self.engine.entries()):
            return model_id
        return UNKNOWN

    def body_limit(self, entry: ModelEntry | None) -> int:
        """The media limit for models that take images or audio (base64 JSON included), else the JSON one."""
        if entry is not None and any(t in TASKS and TASKS[t].input_kind in _MEDIA for t in entry.tasks):
            return self.settings.max_media_bytes
        return self.settings.max_json_bytes


def state_of(request: Request) -> AppState:
    return request.app.state.inferd  # type: ignore[no-any-return]


Handler = Callable[[Request, AppState, Observation], Awaitable[Response]]


def endpoint(
    *, protocol: str = "hf", record: bool = True
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: metrics, timing headers, and every error answered in one envelope (the API key is
    checked before any route, by limits.ApiKeyGate).

    `record=False` leaves a route out of the request metrics (catalogue and status routes).
    The handler gets an Observation whose `task` it may set once known; errors (ServerError or unexpected)
    become `{"error", "error_type"}` (or OpenAI's envelope when protocol="openai").
    """
    render = openai_error_response if protocol == "openai" else error_response

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            state = state_of(request)
            task = request.path_params.get("task", "")
            obs = state.metrics.observe(
                str(request.path_params.get("model_id", "")), task if task in TASKS or not task else UNKNOWN
            )
            status = 500
            try:
                with DRAIN.tracking():
                    response = await handler(request, state, obs)
                status = response.status_code
                if record and getattr(response, "observes_itself", False):  # streams record when they end
                    return response
            except ClientGone:
                status = 499  # nginx's "client closed request": nobody reads this answer
                response = Response(status_code=499)
            except asyncio.CancelledError:
                if not DRAIN.cut_off():  # the client left, or the server is cancelling everything: no answer
                    raise
                response = render(shutting_down())  # still running at the drain deadline: its work stopped
                status = response.status_code
            except Exception as exc:
                response = render(exc)
                status = response.status_code
                response.headers.update(obs.headers(state.settings.compute_type))
            if record:
                obs.model = state.metrics_model(obs.model)
                obs.done(status)
            else:
                obs.discard()
            return response

        return run

    return wrap
