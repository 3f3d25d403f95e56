"""Whether a request waits for its model to load: yes, unless the client explicitly says no.

Today's clients (huggingface_hub 1.x and 2.x, the openai SDK) do not retry a 503 "currently loading" long
enough to see a model load, so a request for a model that is not loaded yet waits for the load (bounded by the
server's `max_load_wait_s` and the request timeout; see Registry.acquire). A client that prefers the hosted
Inference API's old answer, a 503 with `estimated_time` at once, asks for it with `X-Wait-For-Model: false`
or `{"options": {"wait_for_model": false}}`. Any other value (absent, true, garbage) waits.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

_NO = ("0", "false", "no")


def waits_for_model(request: Request, options_wait: Any = None) -> bool:
    """False only when the header or the body's `options.wait_for_model` explicitly says not to wait."""
    if options_wait is False:
        return False
    return request.headers.get("x-wait-for-model", "").strip().lower() not in _NO
