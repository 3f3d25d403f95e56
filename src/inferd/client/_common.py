"""The sans-I/O core both clients share: where a request goes, which headers it carries, how an error
status becomes an exception. Nothing here opens a socket; the tests call these functions directly.
"""

from __future__ import annotations

import codecs
import json
import os
import platform
import re
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import (
    HfHubHTTPError,
    InferenceTimeoutError,
    InvalidResponseError,
    error_class,
)
from ..tasks import TASKS

DEFAULT_INFERENCE_ENDPOINT = "https://api-inference.huggingface.co"
DEFAULT_HUB_ENDPOINT = "https://huggingface.co"

MAIN_INFERENCE_API_FRAMEWORKS = [
    "diffusers",
    "sentence-transformers",
    "text-generation-inference",
    "transformers",
]
ALL_INFERENCE_API_FRAMEWORKS = MAIN_INFERENCE_API_FRAMEWORKS + [
    "adapter-transformers", "allennlp", "asteroid", "bertopic", "doctr", "espnet", "fairseq", "fastai",
    "fasttext", "flair", "generic", "k2", "keras", "mindspore", "nemo", "open_clip", "paddlenlp", "peft",
    "pyannote-audio", "sklearn", "spacy", "span-marker", "speechbrain", "stanza", "timm",
]  # fmt: skip

NO_MODEL_MESSAGE = (
    "You must specify at least a model (repo_id or URL) or a task, either when instantiating"
    " `InferenceClient` or when making a request."
)
USER_AGENT = f"unknown/None; inferd/{__version__}; python/{platform.python_version()}"


# Process-wide caches, shared by the sync and async clients (`clear_caches()` empties them).
# {hub endpoint: {task: model}} from GET {HF_ENDPOINT}/api/tasks, fetched once per process.
RECOMMENDED_MODELS: dict[str, dict[str, str | None]] = {}
# {base_url: {task: model}, or None when that server publishes no /api/tasks (TGI, vLLM...)}, and the notes an
# inferd server gives for the tasks it has no model for.
SERVER_TASKS: dict[str, dict[str, str | None] | None] = {}
SERVER_NOTES: dict[str, dict[str, str]] = {}
# {model URL: text-generation parameters its server refused}: filled from the server's own `model_kwargs`
# error, so a retry drops exactly those and can never loop (the set only grows).
UNSUPPORTED_PARAMETERS: dict[str, set[str]] = {}


def clear_caches() -> None:
    RECOMMENDED_MODELS.clear()
    SERVER_TASKS.clear()
    UNSUPPORTED_PARAMETERS.clear()


class TransportTimeout(Exception):
    """Raised by a transport on a connect or read timeout; the client turns it into InferenceTimeoutError."""


class TransportError(Exception):
    """Raised by a transport when a connection fails or drops."""


@dataclass(frozen=True)
class ModelStatus:
    loaded: bool
    state: str
    compute_type: dict[str, Any] | str
    framework: str


@dataclass
class Response:
    """A fully read response. Also the `.response` of an HTTP error (`.json()`, `.text`, `.content`)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    url: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def json_body(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError:
            return None


def is_url(model: str | None) -> bool:
    return model is not None and model.startswith(("http://", "https://"))


def inference_endpoint(base_url: str | None = None) -> str:
    return (base_url or os.environ.get("HF_INFERENCE_ENDPOINT") or DEFAULT_INFERENCE_ENDPOINT).rstrip("/")


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_HUB_ENDPOINT).rstrip("/")


def model_url(model_id: str, task: str | None, endpoint: str) -> str:
    """`{endpoint}/models/{id}`, or `{endpoint}/pipeline/{task}/{id}` for tasks served under /pipeline."""
    spec = TASKS.get(task) if task else None
    if spec is not None and spec.pipeline_route:
        return f"{endpoint}/pipeline/{task}/{model_id}"
    return f"{endpoint}/models/{model_id}"


def task_url(model_id: str, task: str, base_url: str) -> str:
    """`{base_url}/models/{id}/pipeline/{task}`: names the task, for a model of a server that serves several
    tasks with the same input shape (an LLM doing text-generation and summarization)."""
    return f"{base_url}/models/{model_id}/pipeline/{task}"


def recommended_from_tasks(payload: Any) -> dict[str, str | None]:
    """`GET /api/tasks` -> {task: first widget model or None}."""
    if not isinstance(payload, dict):
        raise InvalidResponseError("`/api/tasks` did not return an object.")
    out: dict[str, str | None] = {}
    for task, info in payload.items():
        models = info.get("widgetModels") if isinstance(info, dict) else None
        out[task] = (models[0] or None) if isinstance(models, list) and models else None
    return out


def unavailable_notes(payload: Any) -> dict[str, str]:
    """`GET /api/tasks` of an inferd server -> {task: why no model serves it and how to add one}."""
    if not isinstance(payload, dict):
        return {}
    return {
        task: info["note"]
        for task, info in payload.items()
        if isinstance(info, dict) and isinstance(info.get("note"), str) and not info.get("widgetModels")
    }


def no_recommended_model(task: str, note: str | None = None) -> ValueError:
    if note:
        return ValueError(note)
    return ValueError(
        f"Task {task} has no recommended model. Please specify a model explicitly."
        " Visit https://huggingface.co/tasks for more info."
    )


# ---- tokens and headers -------------------------------------------------------------------------


def resolve_token(token: str | bool | None) -> str | None:
    """`token=False` never sends one; None looks in HF_TOKEN, then the token file under HF_HOME."""
    if token is False:
        return None
    if isinstance(token, str):
        return token or None
    if token is None and os.environ.get("HF_HUB_DISABLE_IMPLICIT_TOKEN", "").lower() in ("1", "true", "yes"):
        return None
    env = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if env:
        return env.strip()
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    path = Path(os.environ.get("HF_TOKEN_PATH") or home / "token")
    try:
        found = path.read_text().strip()
    except OSError:
        found = ""
    if token is True and not found:
        raise ValueError("`token=True` but no token was found (HF_TOKEN or the token file under HF_HOME).")
    return found or None


class Headers(dict):  # type: ignore[type-arg]
    """A dict of headers whose keys ignore case (stored lower-cased): `headers["Authorization"]` works."""

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.update(data or {})

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())  # type: ignore[no-any-return]

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def pop(self, key: str, *default: Any) -> Any:
        return super().pop(key.lower(), *default)

    def update(self, other: Any = (), /, **kwargs: str) -> None:  # type: ignore[override]
        for key, value in dict(other, **kwargs).items():
            self[key] = value


def build_headers(
    token: str | None, headers: Mapping[str, str] | None, cookies: Mapping[str, str] | None
) -> Headers:
    """Default headers, then the user's (which win whatever their case)."""
    out = Headers({"user-agent": USER_AGENT})
    if token:
        out["authorization"] = f"Bearer {token}"
    if cookies:
        out["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    out.update(headers or {})
    return out


def redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


# ---- errors -------------------------------------------------------------------------------------

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    424: "Failed Dependency",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def server_message(body: Any, headers: Mapping[str, str]) -> str | None:
    """The server's own words: X-Error-Message, body "error" (str, list, or OpenAI's {"message": ...}) or body
    "errors"[].message."""
    parts: list[str] = []
    header = headers.get("x-error-message")
    if header:
        parts.append(header)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            parts.append(error)
        elif isinstance(error, list):
            parts.extend(str(e) for e in error)
        elif isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
        for item in body.get("errors") or []:
            if isinstance(item, dict) and item.get("message"):
                parts.append(str(item["message"]))
    return "\n".join(dict.fromkeys(parts)) or None


def http_error(response: Response, *, url: str, task: str | None, token: str | None = None) -> HfHubHTTPError:
    """The typed exception for an error status; never carries the token."""
    status = response.status_code
    body = response.json_body
    message = server_message(body, response.headers)
    if message is None and response.content and not isinstance(body, (dict, list)):
        message = response.text[:2000].strip() or None
    error_type = body.get("error_type") if isinstance(body, dict) else None
    kind = "Client" if status < 500 else "Server"
    text = f"{status} {kind} Error: {_REASONS.get(status, 'Error')} for url: {url}"
    request_id = response.headers.get("x-request-id")
    if request_id:
        text += f" (Request ID: {request_id})"
    if message:
        text += f"\n\n{message}"
    if status == 422 and task:
        text += f"\nMake sure '{task}' task is supported by the model."
    cls = error_class(error_type if isinstance(error_type, str) else None, status)
    return cls(
        redact(text, token),
        status_code=status,
        server_message=redact(message, token) if message else None,
        request_id=request_id,
        response=response,
        error_type=error_type if isinstance(error_type, str) else None,
    )


def loading_timeout(url: str, timeout: float | None) -> InferenceTimeoutError:
    return InferenceTimeoutError(
        f"Model not loaded on the server: {url}. Please retry with a higher timeout (current: {timeout})."
    )


def call_timeout(url: str) -> InferenceTimeoutError:
    return InferenceTimeoutError(f"Inference call timed out: {url}")


def estimated_time(response: Response) -> float | None:
    """The `estimated_time` of a 503 "model is loading" body, or None when the 503 is something else."""
    if response.status_code != 503:
        return None
    body = response.json_body
    value = body.get("estimated_time") if isinstance(body, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def decode_json(response: Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        snippet = response.content[:200].decode("utf-8", errors="replace")
        raise InvalidResponseError(
            f"Expected JSON from {response.url}, got {response.headers.get('content-type')!r}: {snippet!r}"
        ) from None


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def group_deployed_models(items: list[Any], framework: str, into: dict[str, list[str]]) -> None:
    for item in items:
        if not isinstance(item, dict) or "task" not in item or "model_id" not in item:
            continue
        into.setdefault(item["task"], []).append(item["model_id"])
        if framework == "sentence-transformers":
            # Hosted sentence-transformers models serve both tasks.
            into.setdefault("feature-extraction", []).append(item["model_id"])
            into.setdefault("sentence-similarity", []).append(item["model_id"])


def sort_deployed_models(grouped: dict[str, list[str]]) -> dict[str, list[str]]:
    return {task: sorted(set(models), key=lambda m: m.lower()) for task, models in grouped.items()}


def model_status(body: Any) -> ModelStatus:
    if isinstance(body, dict) and "error" in body:
        raise ValueError(body["error"])
    if not isinstance(body, dict):
        raise InvalidResponseError("Model status is not an object.")
    return ModelStatus(
        loaded=bool(body.get("loaded")),
        state=str(body.get("state")),
        compute_type=body.get("compute_type", ""),
        framework=str(body.get("framework")),
    )


class ChatCompletions:
    """`client.chat.completions.create(...)` is `client.chat_completion(...)` (OpenAI's spelling)."""

    def __init__(self, create: Callable[..., Any]) -> None:
        self.create = create


class Chat:
    def __init__(self, create: Callable[..., Any]) -> None:
        self.completions = ChatCompletions(create)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class LineDecoder:
    """Bytes in, complete text lines out (without their line break), across chunk boundaries."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def feed(self, chunk: bytes) -> list[str]:
        text = self._pending + self._decoder.decode(chunk)
        hold = text.endswith("\r")  # maybe the first half of "\r\n"
        if hold:
            text = text[:-1]
        lines = _LINE_BREAK.split(text)
        self._pending = lines.pop() + ("\r" if hold else "")
        return lines

    def flush(self) -> list[str]:
        rest = (self._pending + self._decoder.decode(b"", final=True)).rstrip("\r")
        self._pending = ""
        return [rest] if rest else []


def environment_proxies(trust_env: bool) -> dict[str, str]:
    """HTTP(S)_PROXY and friends, read once per client (as httpx does)."""
    return urllib.request.getproxies() if trust_env else {}


def proxy_for(url: str, proxies: str | Mapping[str, str] | None, found: Mapping[str, str]) -> str | None:
    """The proxy URL for `url`: the explicit `proxies` (one URL, or by scheme), else the environment's."""
    if isinstance(proxies, str):
        return proxies
    if not proxies and not found:
        return None
    scheme, _, rest = url.partition("://")
    if proxies:
        return proxies.get(scheme) or proxies.get(f"{scheme}://") or proxies.get("all")
    proxy = found.get(scheme) or found.get("all")
    if proxy and urllib.request.proxy_bypass(rest.split("/", 1)[0]):
        return None
    return proxy
