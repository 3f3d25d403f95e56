"""One exception tree for inferd, and the one map between wire `error_type` names and exceptions.

The server writes `{"error": message, "error_type": name}`; the client turns `name` back into the class here.
Names users of the reference client catch (`HfHubHTTPError`, `BadRequestError`, `InferenceTimeoutError`,
`ValidationError`, ...) are classes of this tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class InferdError(Exception):
    """Root of every error inferd raises on purpose."""


class HfHubHTTPError(InferdError):
    """The server answered with an error status.

    `status_code`, `server_message` (the server's own words), `request_id` and `response_body` are kept;
    `response` mimics the bits of a requests/httpx response that callers read (`.status_code`, `.headers`,
    `.text`, `.content`, `.json()`).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        server_message: str | None = None,
        request_id: str | None = None,
        response: Any = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.server_message = server_message
        self.request_id = request_id
        self.response = response
        self.error_type = error_type

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


HTTPError = HfHubHTTPError


class BadRequestError(HfHubHTTPError, ValueError):
    """400: the request was malformed."""


class UnauthorizedError(HfHubHTTPError):
    """401/403: a token is missing or wrong."""


class NotFoundError(HfHubHTTPError):
    """404: no such model or route."""


class PayloadTooLargeError(HfHubHTTPError):
    """413: the body is over the server's limit."""


class ModelLoadingError(HfHubHTTPError):
    """503 while a model loads; `estimated_time` says how long the server expects it to take."""

    @property
    def estimated_time(self) -> float | None:
        body = getattr(self.response, "json_body", None)
        value = body.get("estimated_time") if isinstance(body, dict) else None
        return float(value) if isinstance(value, (int, float)) else None


class NotSupportedError(HfHubHTTPError):
    """400 `not_supported` (501 from older servers): the model does not do this task or route."""


class InferenceTimeoutError(HfHubHTTPError, TimeoutError):
    """A call did not finish within `timeout` (connect, read, or waiting for a model to load)."""


class TextGenerationError(HfHubHTTPError):
    """Base of the errors a text-generation server reports by `error_type` (TGI's family)."""


class ValidationError(TextGenerationError, ValueError):
    """422: the server refused the inputs or parameters (TGI `validation`)."""


class GenerationError(TextGenerationError):
    """The model failed while generating (TGI `generation`)."""


class OverloadedError(TextGenerationError):
    """429: the server sheds load (TGI `overloaded`); retried with backoff by the client."""


class IncompleteGenerationError(TextGenerationError):
    """The stream ended before the generation was complete (TGI `incomplete_generation`)."""


class UnknownError(TextGenerationError):
    """The server named an error type inferd does not know."""


class InferenceConnectionError(InferdError, ConnectionError):
    """The connection failed or dropped and the retries ran out."""


class InvalidResponseError(InferdError, ValueError):
    """The server answered 200 with a body that is not what the task returns."""


# The one map from wire error_type to exception. The server uses these names; TGI uses the first four.
ERROR_TYPES: Mapping[str, type[HfHubHTTPError]] = {
    "validation": ValidationError,
    "generation": GenerationError,
    "overloaded": OverloadedError,
    "incomplete_generation": IncompleteGenerationError,
    "bad_request": BadRequestError,
    "unauthorized": UnauthorizedError,
    "not_found": NotFoundError,
    "payload_too_large": PayloadTooLargeError,
    "model_loading": ModelLoadingError,
    "not_supported": NotSupportedError,
    "timeout": InferenceTimeoutError,
}

# Used when the body names no error_type: the status decides.
STATUS_ERRORS: Mapping[int, type[HfHubHTTPError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: OverloadedError,
    501: NotSupportedError,  # inferd before 0.2 answered not_supported with 501
    503: ModelLoadingError,
    504: InferenceTimeoutError,
}

# The server's status for each error_type it writes.
ERROR_STATUS: Mapping[str, int] = {
    "validation": 422,
    "generation": 424,
    "overloaded": 429,
    "incomplete_generation": 500,
    "bad_request": 400,
    "unauthorized": 401,
    "not_found": 404,
    "payload_too_large": 413,
    "model_loading": 503,
    "unhealthy": 503,  # GET /health: a preloaded model failed to load
    # 400, not 501: the request asked a model for what it does not do. A 5xx says the server failed, and SDKs
    # retry it (openai retries every 5xx); the client maps the error_type, and a legacy 501, to NotSupportedError.
    "not_supported": 400,
    "timeout": 504,
    "internal": 500,
}


def error_class(error_type: str | None, status_code: int | None) -> type[HfHubHTTPError]:
    """The exception class for a wire error: by `error_type` first, then by status."""
    if error_type and error_type in ERROR_TYPES:
        return ERROR_TYPES[error_type]
    if error_type and status_code is not None and status_code < 500 and status_code != 429:
        # A typed error from a TGI-like server that inferd does not know: keep the TGI family contract.
        return UnknownError
    return STATUS_ERRORS.get(status_code or 0, HfHubHTTPError)


def error_type_of(exc: type[BaseException]) -> str:
    """The wire name of an exception class (the reverse of ERROR_TYPES)."""
    for name, cls in ERROR_TYPES.items():
        if cls is exc:
            return name
    return "internal"
