"""The playground: a page at GET / and /playground that tries every served task in the browser.

    Starlette(routes=[*api_routes, *playground.routes()])

The page is plain HTML, CSS and JavaScript modules kept next to this file: no build step, and no request to
any other host (the Content-Security-Policy below forbids it). Files are read on their first request and kept,
so the playground adds nothing to startup, and its routes come last, after every inference route.

These routes need no API key: they hold no data. With `--api-key` the page asks for the key and sends it on
every call it makes (kept in the tab's sessionStorage only); everything it shows comes from those calls.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..errors import ServerError
from ..respond import error_response
from ..state import state_of

# The routes of this module, every one public; an allow-list of routes that work without the key names these.
PUBLIC_PATHS = ("/", "/playground", "/playground/{asset}")
ASSETS = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "dom.js": "text/javascript",
    "media.js": "text/javascript",
    "chat.js": "text/javascript",
    "inputs.js": "text/javascript",
    "outputs.js": "text/javascript",
    "snippets.js": "text/javascript",
    "style.css": "text/css",
}
# Only this origin: a page that cannot reach any other host cannot leak a key or an input to it. Media the
# page makes (uploaded pictures, recordings, answers) are data: and blob: URLs.
_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",  # revalidated, so a new inferd version's page is never mixed with an old one
}
# Tells the page to ask for the key before it calls anything (it says no more than `--api-key` was given).
_KEY_MARKER = '<meta name="inferd-api-key" content="optional">'


@functools.cache
def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


async def page(request: Request) -> Response:
    html = _read("index.html")
    if state_of(request).settings.api_key:
        html = html.replace(_KEY_MARKER, _KEY_MARKER.replace("optional", "required"))
    return HTMLResponse(html, headers=_HEADERS)


async def asset(request: Request) -> Response:
    name = request.path_params["asset"]
    if name not in ASSETS:
        return error_response(ServerError(f"No playground file {name!r}.", "not_found"))
    return Response(_read(name), media_type=ASSETS[name], headers=_HEADERS)


def public_paths() -> frozenset[str]:
    """The exact paths of this module's routes, for the API key's allow-list (limits.ApiKeyGate): the page and
    its files hold no data, and the page asks for the key before it calls anything."""
    return frozenset({"/", "/playground", *(f"/playground/{name}" for name in ASSETS)})


def routes() -> list[Route]:
    handlers = (page, page, asset)
    return [Route(path, h, methods=["GET"]) for path, h in zip(PUBLIC_PATHS, handlers, strict=True)]
