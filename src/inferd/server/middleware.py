"""The HTTP layers around the app: a URL length guard, then the optional ones, all off by default: CORS
(`--cors-origin`), the API key (`--api-key`, limits.ApiKeyGate) and gzip (`--gzip`).

    Starlette(routes=..., middleware=http_middleware(ServerSettings(cors_origins=("*",), gzip=True)))

CORS lets a web page on another origin call the server (a browser demo, a notebook front end); its preflight
is answered here, before the API key is checked, so it never needs the key. gzip shrinks big JSON answers (feature
extraction over many texts: about 2.3x smaller) and never touches a stream.
"""

from __future__ import annotations

import re

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import playground
from .limits import MAX_URL_BYTES, PUBLIC_PATHS, ApiKeyGate, url_too_long
from .respond import error_response
from .settings import ServerSettings

# What browser clients of the three protocols send beyond the CORS-safelisted headers: the API key, JSON,
# huggingface_hub/huggingface.js options, the openai SDK's (JS in a browser) organisation and platform headers.
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "X-Wait-For-Model",
    "X-Use-Cache",
    "X-Request-Id",
    "OpenAI-Organization",
    "OpenAI-Project",
    *(
        f"X-Stainless-{name}"
        for name in (
            "Arch",
            "Custom-Poll-Interval",
            "Helper-Method",
            "Lang",
            "OS",
            "Package-Version",
            "Poll-Helper",
            "Retry-Count",
            "Runtime",
            "Runtime-Version",
            "Timeout",
        )
    ),
)
# Response headers a page may read: timing and approximation notes, and what clients need to retry.
CORS_EXPOSED_HEADERS = (
    "x-compute-time",
    "x-compute-type",
    "x-compute-characters",
    "x-queue-time",
    "x-inference-time",
    "x-prompt-tokens",
    "x-generated-tokens",
    "x-inferd-approximation",
    "x-inferd-replica",
    "x-should-retry",
    "Retry-After",
)
CORS_MAX_AGE_S = 600  # browsers cap it anyway (Chrome: 2 h); one preflight per endpoint per 10 min

GZIP_MINIMUM_BYTES = 1024  # below about a packet, compressing costs more than it saves
# nginx's default level. Measured on 64 normalised 384-d embeddings (300 KB of JSON): level 1 gives 133 KB in
# 3.4 ms, level 6 119 KB in 20 ms, level 9 (Starlette's default) 117 KB in 58 ms, CPU the models need.
GZIP_LEVEL = 1
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]+$", re.IGNORECASE)


def check_origin(origin: str) -> str:
    """`origin` if it can match a browser's Origin header (`scheme://host[:port]`, or `*`); ValueError if not."""
    if origin == "*" or _ORIGIN.match(origin):
        return origin
    raise ValueError(
        f"'{origin}' is not a CORS origin: write scheme://host[:port] with no path and no trailing slash "
        "(e.g. http://localhost:3000), or * for any origin."
    )


class UrlLengthGuard:
    """414 in the error envelope for a URL over MAX_URL_BYTES (for servers whose parser lets it through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("raw_path") or scope["path"].encode()
            if len(path) + len(scope.get("query_string", b"")) > MAX_URL_BYTES:
                await error_response(url_too_long())(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_middleware(settings: ServerSettings) -> list[Middleware]:
    """The layers `settings` asks for, outermost first: the URL guard, then CORS and gzip (off by default)."""
    layers: list[Middleware] = [Middleware(UrlLengthGuard)]
    if settings.cors_origins:
        layers.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=list(CORS_REQUEST_HEADERS),
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=CORS_MAX_AGE_S,
            )
        )
    if settings.api_key:
        public = PUBLIC_PATHS | (playground.public_paths() if settings.playground else frozenset())
        layers.append(Middleware(ApiKeyGate, api_key=settings.api_key, public=public))  # inside CORS
    if settings.gzip:
        layers.append(Middleware(GZipUnlessStreaming))
    return layers


def _compressible(start: Message) -> bool:
    """JSON and text gain from gzip; images and audio are compressed already."""
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"text/") and kind != b"text/event-stream")
    return False


class GZipUnlessStreaming:
    """Starlette's GZipMiddleware for whole JSON and text bodies only.

    A streamed body (server-sent events of TGI and OpenAI, anything sent in several chunks) goes straight to
    the client, as do media: Starlette before 1.5 compressed streams into a buffer that held every event until
    the end, and later versions still compress them. The choice waits for the first body message, the first
    moment a response says whether more is coming.
    """

    def __init__(self, app: ASGIApp, minimum_size: int = GZIP_MINIMUM_BYTES) -> None:
        self.app = app
        self.minimum_size = minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def routed(scope: Scope, receive: Receive, gzip_send: Send) -> None:
            start: Message | None = None
            target: Send | None = None

            async def route(message: Message) -> None:
                nonlocal start, target
                kind = message["type"]
                if kind == "http.response.start":
                    start = message
                    return
                if target is None and start is not None and kind.startswith("http.response."):
                    whole = kind == "http.response.body" and not message.get("more_body", False)
                    target = gzip_send if whole and _compressible(start) else send
                    await target(start)
                await (target or send)(message)

            await self.app(scope, receive, route)

        gzip = GZipMiddleware(routed, minimum_size=self.minimum_size, compresslevel=GZIP_LEVEL)
        await gzip(scope, receive, send)
