"""The async client's core: construction, where a call goes, and one request loop (retries, the wait for a
loading model, typed errors). Task methods live in mixins. `scripts/unasync.py` generates `_sync_base.py`.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
import warnings
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

from ..errors import IncompleteGenerationError, InferenceConnectionError
from ..tasks import TASKS
from . import _common as core
from ._common import Response, TransportError, TransportTimeout
from ._inputs import ContentT, Url, prepare
from ._retry import RetryPolicy, parse_retry_after
from ._transport_async import AsyncStreamResponse, AsyncTransport, Stream, gather, sleep

logger = logging.getLogger("inferd.client")
_Client = TypeVar("_Client", bound="_AsyncBase")

_RECOMMENDED = core.RECOMMENDED_MODELS
_SERVER_TASKS = core.SERVER_TASKS
_SERVER_NOTES = core.SERVER_NOTES


class _AsyncBase:
    def __init__(
        self,
        model: str | None = None,
        token: str | bool | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        proxies: str | dict[str, str] | None = None,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        trust_env: bool = True,
    ) -> None:
        if api_key is not None and token is not None:
            raise ValueError("Received both `token` and `api_key`: pass only one (they are aliases).")
        if base_url is not None and core.is_url(model):
            raise ValueError("Received both a model URL and `base_url`: pass only one.")
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self._token = core.resolve_token(api_key if api_key is not None else token)
        self.headers = core.build_headers(self._token, headers, cookies)
        self.cookies = cookies
        self._endpoint = core.inference_endpoint(self.base_url)
        self._retry = retry_policy or RetryPolicy(max_retries=max_retries)
        self._transport = AsyncTransport(proxies=proxies, trust_env=trust_env)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}(model='{self.model or self.base_url or ''}', timeout={self.timeout})>"

    async def __aenter__(self: _Client) -> _Client:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections. `async with AsyncInferenceClient() as client:` does it for you."""
        await self._transport.close()

    aclose = close  # unasync: remove

    # ---- where requests go ----------------------------------------------------------------------

    async def _resolve_url(self, model: str | None = None, task: str | None = None) -> str:
        model = model or self.model
        if model is not None and core.is_url(model):
            return model
        if model:
            return core.model_url(model, task, self._endpoint)
        if self.base_url is not None:
            recommended = await self._server_tasks(self.base_url) if task else None
            if recommended is None:
                return self.base_url  # a TGI or vLLM server: base_url is the model URL
            note = _SERVER_NOTES.get(self.base_url, {}).get(task or "")
            return core.task_url(self._pick(recommended, task, note), str(task), self.base_url)
        if task is None:
            raise ValueError(core.NO_MODEL_MESSAGE)
        hub = core.hub_endpoint()
        if hub not in _RECOMMENDED:
            response = await self._request("GET", f"{hub}/api/tasks", retry=True)
            _RECOMMENDED[hub] = core.recommended_from_tasks(core.decode_json(response))
        model = self._pick(_RECOMMENDED[hub], task)
        logger.info("Using recommended model %s for task %s.", model, task)
        return core.model_url(model, task, self._endpoint)

    @staticmethod
    def _pick(recommended: Mapping[str, str | None], task: str | None, note: str | None = None) -> str:
        model = recommended.get(task or "")
        if not model:
            raise core.no_recommended_model(str(task), note)
        return model

    async def _server_tasks(self, base_url: str) -> dict[str, str | None] | None:
        """The recommended models a server at `base_url` publishes (inferd's does), or None (TGI, vLLM...)."""
        if base_url not in _SERVER_TASKS:
            try:
                response = await self._request("GET", f"{base_url}/api/tasks", check=False, retry=False)
            except (InferenceConnectionError, core.HfHubHTTPError):
                return None  # not cached: the call itself will report the server's state
            if response.status_code == 401:
                # The server wants a key and this one is missing or wrong: say so. Taking it for a server
                # without /api/tasks (TGI) would end in a misleading 404 from POST {base_url}.
                raise core.http_error(response, url=f"{base_url}/api/tasks", task=None, token=self._token)
            body = response.json_body if response.status_code == 200 else None
            _SERVER_TASKS[base_url] = core.recommended_from_tasks(body) if isinstance(body, dict) else None
            _SERVER_NOTES[base_url] = core.unavailable_notes(body)
        return _SERVER_TASKS[base_url]

    @staticmethod
    def get_recommended_model(task: str) -> str:
        """The model the Hub recommends for `task` (`GET {HF_ENDPOINT}/api/tasks`, fetched once and cached).

        >>> InferenceClient.get_recommended_model("text-classification")
        'distilbert-base-uncased-finetuned-sst-2-english'
        """
        hub = core.hub_endpoint()
        if hub not in _RECOMMENDED:
            request = urllib.request.Request(f"{hub}/api/tasks", headers={"user-agent": core.USER_AGENT})
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (an https Hub URL)
                _RECOMMENDED[hub] = core.recommended_from_tasks(json.loads(answer.read()))
        return _AsyncBase._pick(_RECOMMENDED[hub], task)

    # ---- the one request loop -------------------------------------------------------------------

    def _headers(self, content_type: str | None, task: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        if content_type is not None:
            headers["content-type"] = content_type
        spec = TASKS.get(task) if task else None
        if spec is not None and spec.returns_image and "accept" not in headers:
            headers["accept"] = "image/png"
        return headers

    async def _request(
        self,
        method: str,
        url: str,
        *,
        task: str | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        stream: bool = False,
        check: bool = True,
        retry: bool = True,
    ) -> Any:
        """One call with the retry policy; a Response (or an open AsyncStreamResponse when `stream`)."""
        headers = self._headers(content_type, task)
        start = time.monotonic()
        attempt = 0
        while True:
            remaining = None if self.timeout is None else self.timeout - (time.monotonic() - start)
            try:
                if stream:
                    opened = await self._transport.stream(
                        method, url, headers=headers, body=body, timeout=self.timeout
                    )
                    if opened.status_code < 400 or not check:
                        return opened
                    response = await opened.read()
                else:
                    response = await self._transport.request(
                        method, url, headers=headers, body=body, timeout=self.timeout
                    )
            except TransportTimeout:
                raise core.call_timeout(url) from None
            except TransportError as exc:
                wait = self._retry.delay(attempt=attempt, remaining=remaining) if retry else None
                if wait is None:
                    raise InferenceConnectionError(f"Connection to {url} failed: {exc}") from None
                logger.info("Connection to %s failed (%s); retrying in %.2fs.", url, exc, wait)
                attempt += 1
                await sleep(wait)
                continue
            if response.status_code < 400 or not check:
                return response
            loading = core.estimated_time(response)
            if loading is not None and retry:
                wait = self._retry.loading_delay(loading, remaining=remaining)
                if wait is None:
                    raise core.loading_timeout(url, self.timeout)
                logger.info("Model at %s is loading (estimated %.1fs); waiting %.2fs.", url, loading, wait)
                await sleep(wait)
                continue
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            wait = (
                self._retry.delay(
                    attempt=attempt, status=response.status_code, retry_after=retry_after, remaining=remaining
                )
                if retry
                else None
            )
            if wait is None:
                raise core.http_error(response, url=url, task=task, token=self._token)
            logger.info("%s answered %s; retrying in %.2fs.", url, response.status_code, wait)
            attempt += 1
            await sleep(wait)

    async def _binary(self, content: ContentT) -> bytes:
        data = prepare(content)
        if not isinstance(data, Url):
            return data
        response = await self._request("GET", str(data), check=False)
        if response.status_code >= 400:
            raise core.HfHubHTTPError(
                f"Could not download the input at {data}: HTTP {response.status_code}.",
                status_code=response.status_code,
                response=response,
            )
        return response.content

    async def _call(
        self, task: str, body: bytes | dict[str, Any] | list[Any], *, model: str | None
    ) -> Response:
        """POST a task's body (raw bytes or JSON) to the model's URL."""
        url = await self._resolve_url(model, task)
        if isinstance(body, bytes):
            return await self._request("POST", url, task=task, body=body)  # type: ignore[no-any-return]
        return await self._request(  # type: ignore[no-any-return]
            "POST", url, task=task, body=core.encode_json(body), content_type="application/json"
        )

    async def _call_json(
        self, task: str, body: bytes | dict[str, Any] | list[Any], *, model: str | None
    ) -> Any:
        return core.decode_json(await self._call(task, body, model=model))

    async def _events(self, response: AsyncStreamResponse) -> Stream[str]:
        """The `data` of each server-sent event; the connection is released however the loop ends."""
        from ..sse import SSEDecoder

        decoder = SSEDecoder()
        try:
            async for line in response.lines():
                event = decoder.decode(line)
                if event is not None:
                    yield event.data
            event = decoder.flush()
            if event is not None:
                yield event.data
        except TransportTimeout:
            raise core.call_timeout(response.url) from None
        except TransportError as exc:
            # Never retried: the caller has already seen part of the answer.
            raise IncompleteGenerationError(f"The stream from {response.url} was cut: {exc}") from None
        finally:
            await response.close()

    # ---- raw calls and server information ------------------------------------------------------

    async def post(
        self,
        *,
        json: str | dict[str, Any] | list[Any] | None = None,
        data: ContentT | None = None,
        model: str | None = None,
        task: str | None = None,
        stream: bool = False,
    ) -> Any:
        """Send a raw request; the answer's bytes (or its lines as bytes, when `stream=True`).

        >>> json.loads(client.post(json={"inputs": "Hi"}, task="text-classification"))
        [[{'label': 'POSITIVE', 'score': 0.99}, ...]]
        """
        if data is not None and json is not None:
            warnings.warn("Ignoring `json` as `data` is passed as binary.", stacklevel=2)
        url = await self._resolve_url(model, task)
        if data is not None:
            body, content_type = await self._binary(data), None
        elif json is not None:
            body, content_type = core.encode_json(json), "application/json"
        else:
            body, content_type = None, None
        response = await self._request(
            "POST", url, task=task, body=body, content_type=content_type, stream=stream
        )
        if stream:
            return self._raw_lines(response)
        return response.content

    async def _raw_lines(self, response: AsyncStreamResponse) -> AsyncIterator[bytes]:
        try:
            async for line in response.lines():
                if line:
                    yield line.encode("utf-8")
        except TransportTimeout:
            raise core.call_timeout(response.url) from None
        except TransportError as exc:
            raise IncompleteGenerationError(f"The stream from {response.url} was cut: {exc}") from None
        finally:
            await response.close()

    async def get_model_status(self, model: str | None = None) -> core.ModelStatus:
        """Whether a hosted model is loaded, loadable or too big (`GET {endpoint}/status/{model}`)."""
        model = model or self.model
        if model is None:
            raise ValueError("Model id not provided.")
        if core.is_url(model):
            raise NotImplementedError("Model status is only available for Inference API endpoints.")
        response = await self._request("GET", f"{self._endpoint}/status/{model}", check=False)
        body = response.json_body
        if response.status_code >= 400 and not (isinstance(body, dict) and "error" in body):
            raise core.http_error(response, url=f"{self._endpoint}/status/{model}", task=None)
        return core.model_status(body)

    async def list_deployed_models(self, frameworks: None | str | list[str] = None) -> dict[str, list[str]]:
        """Models deployed on the endpoint, grouped by task (`"all"` asks every known framework)."""
        if frameworks is None:
            names = list(core.MAIN_INFERENCE_API_FRAMEWORKS)
        elif frameworks == "all":
            names = list(core.ALL_INFERENCE_API_FRAMEWORKS)
        elif isinstance(frameworks, str):
            names = [frameworks]
        else:
            names = list(dict.fromkeys(frameworks))
        answers = await gather(*(self._request("GET", f"{self._endpoint}/framework/{fw}") for fw in names))
        grouped: dict[str, list[str]] = {}
        for framework, response in zip(names, answers, strict=False):
            core.group_deployed_models(core.decode_json(response), framework, grouped)
        return core.sort_deployed_models(grouped)

    def _server_url(self, model: str | None) -> str:
        url = model or self.model or self.base_url
        if url is None or not core.is_url(url):
            raise ValueError("This call needs a server URL: pass `model=` or `base_url=` as an http(s) URL.")
        return url.rstrip("/")

    async def health_check(self, model: str | None = None) -> bool:
        """True when the server at the model URL (or `base_url`) answers `GET /health` with 200."""
        response = await self._request("GET", f"{self._server_url(model)}/health", check=False, retry=False)
        return bool(response.status_code == 200)

    async def get_endpoint_info(self, model: str | None = None) -> dict[str, Any]:
        """What the server says about itself (`GET {url}/info`, or `{endpoint}/models/{id}/info`)."""
        model = model or self.model
        if model is not None and not core.is_url(model):
            url = f"{self._endpoint}/models/{model}/info"
        else:
            url = f"{self._server_url(model)}/info"
        return core.decode_json(await self._request("GET", url))  # type: ignore[no-any-return]
