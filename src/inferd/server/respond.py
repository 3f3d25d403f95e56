"""The one place that writes answers: JSON bodies, error bodies (HF/TGI and OpenAI envelopes), timing headers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from .errors import ServerError, without_reprs

log = logging.getLogger("inferd.server")

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTIONS)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def as_server_error(exc: BaseException) -> ServerError:
    """Every exception becomes a ServerError; unexpected ones are logged and answered as a bare 500."""
    if isinstance(exc, ServerError) and exc.error_type != "internal":
        return exc
    log.error("internal error: %s", exc, exc_info=exc if not isinstance(exc, ServerError) else None)
    return ServerError("internal error", "internal")


def error_response(exc: BaseException, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """`{"error": str, "error_type": str, ...extra}` with the status and headers the error carries."""
    err = as_server_error(exc)
    return JSONResponse(err.body(), status_code=err.status_code, headers={**(headers or {}), **err.headers})


# OpenAI's `type` per status, as its SDK documents them.
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
    504: "timeout",
}


def openai_error_body(err: ServerError, param: str | None = None) -> dict[str, Any]:
    kind = _OPENAI_TYPES.get(err.status_code, "server_error")
    # `error_type` beside the envelope: inferd's and HF's clients pick the exception class from it.
    return {
        "error": {
            "message": without_reprs(err.message),
            "type": kind,
            "param": param,
            "code": err.error_type,
        },
        "error_type": err.error_type,
    }


def openai_error_response(exc: BaseException) -> JSONResponse:
    """OpenAI's envelope `{"error": {"message", "type", "param", "code"}}` for the /v1 routes."""
    err = as_server_error(exc)
    headers = dict(err.headers)
    if err.status_code < 500 and err.status_code not in (408, 409, 429):
        headers["x-should-retry"] = "false"  # the openai SDK would otherwise retry some of these
    param = err.extra.get("param") if isinstance(err.extra.get("param"), str) else None
    return JSONResponse(openai_error_body(err, param), status_code=err.status_code, headers=headers)
