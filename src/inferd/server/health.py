"""`GET /health` and `GET /models/{id}/health`: cheap (no model call) and public (no API key), as in TGI.

`/health` is the server's readiness, judged by the models the operator asked to preload (spec §2.2, §5):
200 once they are loaded; 503 `model_loading` while start() still loads them, so a load balancer sends no
traffic yet; 503 `unhealthy` naming them when one failed to load, until a later load of it succeeds. Models
loaded on demand do not count: the server cannot know they are broken before someone asks for them. Nor does
a preload loading again after start (the LRU unloaded it): pulling the server out of the load balancer each
time memory churns would turn a slow request into an outage.

`/models/{id}/health` is one model's: 200 when it is loaded or can be (Loadable, Loading), 503 `unhealthy`
when its last load failed, 404 for a model this server does not have. A model not loaded yet is healthy, or a
per-model readiness probe on a lazily loaded model would wait forever for a load that no request starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import ServerError, model_loading
from .metrics import Observation
from .registry import FAILED, LOADING
from .respond import JSONResponse, error_response
from .state import AppState, endpoint, state_of

_SUMMARY_CHARS = 300  # a load error can quote a whole config file; a probe's log needs the gist


def load_failure(model_id: str, status: Mapping[str, Any]) -> str:
    """The first line of a failed model's load error, shortened and naming the model: never a traceback."""
    text = str(status.get("error") or "").strip()
    # Cut at the first line break, real or escaped: the registry quotes the exception's repr, in which a
    # message carrying a traceback (a subprocess's stderr, say) is one long line of "\\n"s.
    first = re.split(r"\n|\\n", text, maxsplit=1)[0].strip() or "see the server log"
    if len(first) > _SUMMARY_CHARS:
        first = first[: _SUMMARY_CHARS - 3] + "..."
    # The registry's own messages already read "Model <id> failed to load: ..."; others (a missing source
    # folder, a digest mismatch) do not name it.
    return first if model_id in first else f"Model {model_id} failed to load: {first}"


def server_problem(preloads: Mapping[str, Mapping[str, Any]], preloading: bool) -> ServerError | None:
    """Why the server is not ready, from each preload's status (None: healthy). A failure outranks a load
    still running: the failed model will not come back by waiting."""
    failed = {m: s for m, s in preloads.items() if s.get("state") == FAILED}
    if failed:
        return ServerError(
            "; ".join(load_failure(m, s) for m, s in failed.items()),
            "unhealthy",
            extra={"models": list(failed)},
        )
    loading = {m: s for m, s in preloads.items() if s.get("state") == LOADING}
    if preloading and loading:
        wait = max(float(s.get("estimated_time") or 1.0) for s in loading.values())
        problem = model_loading(", ".join(loading), wait)  # the 503 a request to them gets
        problem.extra["models"] = list(loading)
        return problem
    return None


async def health(request: Request) -> Response:
    state = state_of(request)
    problem = server_problem(state.engine.preloads(), state.engine.preloading)
    return JSONResponse({"status": "ok"}) if problem is None else error_response(problem)


@endpoint(record=False)
async def model_health(request: Request, state: AppState, obs: Observation) -> Response:
    model_id = request.path_params["model_id"]
    status = state.engine.status(model_id)  # 404 for an unknown model
    if status.get("state") == FAILED:
        raise ServerError(
            load_failure(model_id, status),
            "unhealthy",
            extra={"state": FAILED},
        )
    return JSONResponse({"status": "ok", **status})
