"""The server's one error contract: raise `ServerError`; the app writes `{"error", "error_type"}` in one place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ERROR_STATUS

# `<_io.BytesIO object at 0x7f...>`: what third-party messages (Pillow, libsndfile) say about our objects.
_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def without_reprs(message: str) -> str:
    """`message` without object reprs: they tell a client nothing and leak the server's memory layout."""
    return _REPR.sub("", message)


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
        return {"error": without_reprs(self.message), "error_type": self.error_type, **self.extra}


def model_loading(model_id: str, estimated_time: float) -> ServerError:
    return ServerError(
        f"Model {model_id} is currently loading",
        "model_loading",
        headers={"Retry-After": str(max(1, int(estimated_time + 0.999)))},
        extra={"estimated_time": round(float(estimated_time), 3)},
    )


def overloaded(message: str, retry_after: float = 1.0) -> ServerError:
    return ServerError(message, "overloaded", headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})


# An absolute path (POSIX, home-relative or Windows) where a word, a quote, a bracket or `path:` could end: not
# the `//` of a URL, nor a model id like `org/name`. Quoted, it runs to the quote (spaces included); bare, to a
# space or a bracket, leaving a trailing `:` or `.` to the sentence. A quoted message that starts with a path
# (`'/x/y: weight w holds NaN'`) keeps what follows the path's `: `.
_START = r"(?:~|[A-Za-z]:)?[/\\](?=[^/\\\s'\"])"  # not a lone slash ("a / b") nor `//`
_QUOTED_PATH = re.compile(rf"""(?<=(?P<q>['"])){_START}(?:(?!: )[^'"\n])*(?=(?P=q)|: )""")
_BARE_PATH = re.compile(
    rf"""(?:^|(?<=[\s(\[=:,]))(?<!<){_START}[^\s'"()\[\],;<>]*?(?=[:.]?(?:[\s'"()\[\],;]|$))"""
)


def without_paths(message: str) -> str:
    """`message` with every absolute path replaced by `<path>`: what a client may read of a server-side error
    (a load failure quotes the model's folder, the allowed folders, site-packages). The log keeps the whole."""
    return _BARE_PATH.sub("<path>", _QUOTED_PATH.sub("<path>", message))


def shutting_down() -> ServerError:
    """What a request still running when the server's drain time is up gets (SIGTERM, `--drain-timeout`)."""
    return ServerError(
        "The server is shutting down; retry shortly.", "unhealthy", headers={"Retry-After": "1"}
    )
