"""The server's one error contract: raise `ServerError`; the app writes `{"error", "error_type"}` in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ERROR_STATUS


class ServerError(Exception):
    """An error answered to the caller. `error_type` is a wire name from inferd.errors.ERROR_TYPES."""

    def __init__(
        self,
        message: str,
        error_type: str = "bad_request",
        *,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status_code = status_code or ERROR_STATUS.get(error_type, 400)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # e.g. {"estimated_time": 12.0} on a loading 503

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "error_type": self.error_type, **self.extra}


def model_loading(model_id: str, estimated_time: float) -> ServerError:
    return ServerError(
        f"Model {model_id} is currently loading",
        "model_loading",
        headers={"Retry-After": str(max(1, int(estimated_time + 0.999)))},
        extra={"estimated_time": round(float(estimated_time), 3)},
    )


def overloaded(message: str, retry_after: float = 1.0) -> ServerError:
    return ServerError(message, "overloaded", headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})


def shutting_down() -> ServerError:
    """What a request still running when the server's drain time is up gets (SIGTERM, `--drain-timeout`)."""
    return ServerError(
        "The server is shutting down; retry shortly.", "unhealthy", headers={"Retry-After": "1"}
    )
