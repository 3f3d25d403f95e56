"""uvicorn's HTTP protocols, answering the requests they cannot parse in the server's JSON error envelope.

    uvicorn.run(app, http=http_protocol_class())

uvicorn answers a request it cannot parse (a bad Content-Length, a broken request line, a URL too long for
its parser) itself, before the app sees it, with a plain-text 400. Clients of this server read
`{"error", "error_type"}` from every error, so these subclasses write that instead; a URL over MAX_URL_BYTES is
a 414, as the app answers the shorter ones that reach it (middleware.py).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import ServerError
from .limits import MAX_URL_BYTES, url_too_long
from .respond import dumps

_REASONS = {400: b"Bad Request", 414: b"URI Too Long"}


def _refusal(status: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(JSON body, headers) for a request uvicorn could not parse."""
    error = url_too_long() if status == 414 else ServerError("The request is not valid HTTP/1.1.")
    body = dumps(error.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    return body, headers


class _UrlTooLong(Exception):
    pass


class H11EnvelopeProtocol(H11Protocol):
    """uvicorn's h11 protocol (pure Python), with JSON envelope answers to unparseable requests."""

    def send_400_response(self, msg: str) -> None:
        body, headers = _refusal(400)
        for event in (
            h11.Response(status_code=400, headers=headers, reason=_REASONS[400]),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


if importlib.util.find_spec("httptools") is not None:  # uvicorn[standard]; uvicorn's own choice when present
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsEnvelopeProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, with JSON envelope answers and a 414 for URLs over MAX_URL_BYTES."""

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > MAX_URL_BYTES:
                raise _UrlTooLong()  # the parser stops here and data_received answers through send_400_response

        def send_400_response(self, msg: str) -> None:
            url = getattr(self, "url", b"")
            status = 414 if len(url) > MAX_URL_BYTES else 400
            body, headers = _refusal(status)
            head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head += [name + b": " + value + b"\r\n" for name, value in headers]
            self.transport.write(b"".join([*head, b"\r\n", body]))
            self.transport.close()


def http_protocol_class() -> type[Any]:
    """What `uvicorn.run(http=...)` gets: httptools' protocol when installed (uvicorn's own choice), else h11's."""
    if importlib.util.find_spec("httptools") is not None:
        return HttpToolsEnvelopeProtocol
    return H11EnvelopeProtocol
