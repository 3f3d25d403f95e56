"""The pure pieces: retry policy, Retry-After, line splitting, error mapping, URL rules. No network."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from inferd import BadRequestError, InferenceTimeoutError, ModelLoadingError, ValidationError
from inferd.client import RetryPolicy, _common
from inferd.client._retry import parse_retry_after


def test_retry_delays_grow_and_stop() -> None:
    policy = RetryPolicy(max_retries=3, backoff=1.0, jitter=0.5)
    assert policy.delay(attempt=0, status=429, rand=lambda: 0.0) == 1.0
    assert policy.delay(attempt=1, status=502, rand=lambda: 1.0) == 3.0  # 2s backoff + 50% jitter
    assert policy.delay(attempt=3, status=429) is None  # out of retries
    assert policy.delay(attempt=0, status=400) is None  # not a retryable status
    assert policy.delay(attempt=0, status=None) == 0.0  # a stale keep-alive socket: reconnect at once
    assert policy.delay(attempt=0, status=429, retry_after=7.0) == 7.0
    assert policy.delay(attempt=0, status=429, retry_after=7.0, remaining=2.0) is None  # beyond the timeout
    assert RetryPolicy(max_retry_after=5).delay(attempt=0, status=429, retry_after=100.0) == 5.0


def test_loading_delay_is_bounded_by_the_timeout() -> None:
    policy = RetryPolicy(loading_poll=1.0)
    assert policy.loading_delay(20.0, remaining=None) == 1.0
    assert policy.loading_delay(0.2, remaining=None) == 0.2
    assert policy.loading_delay(20.0, remaining=0.3) == 0.3
    assert policy.loading_delay(20.0, remaining=-0.1) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after(formatdate(1_000_010, usegmt=True), now=1_000_000) == pytest.approx(10.0)


def test_line_decoder_across_chunks() -> None:
    decoder = _common.LineDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r\ndata: \xc3") == ["data: a", ""]
    assert decoder.feed(b"\xa9\nlast") == ["data: \u00e9"]
    assert decoder.flush() == ["last"]


def response(status: int, body: bytes, **headers: str) -> _common.Response:
    return _common.Response(
        status, {k.replace("_", "-"): v for k, v in headers.items()}, body, "http://x/models/m"
    )


def test_error_mapping() -> None:
    error = _common.http_error(
        response(400, b'{"error": "bad input"}', x_request_id="r1"), url="http://x/m", task="fill-mask"
    )
    assert isinstance(error, BadRequestError) and isinstance(error, ValueError)
    assert error.request_id == "r1" and error.server_message == "bad input"
    assert str(error) == "400 Client Error: Bad Request for url: http://x/m (Request ID: r1)\n\nbad input"
    error = _common.http_error(
        response(422, b'{"error": "no", "error_type": "validation"}'), url="u", task="fill-mask"
    )
    assert isinstance(error, ValidationError)
    assert str(error).endswith("\nMake sure 'fill-mask' task is supported by the model.")
    loading = response(503, b'{"error": "loading", "estimated_time": 12.5}')
    assert _common.estimated_time(loading) == 12.5
    assert isinstance(_common.http_error(loading, url="u", task=None), ModelLoadingError)
    assert _common.estimated_time(response(503, b"busy")) is None
    assert "hf_secret" not in str(
        _common.http_error(response(401, b'{"error": "hf_secret"}'), url="u", task=None, token="hf_secret")
    )
    assert isinstance(_common.loading_timeout("u", 3), InferenceTimeoutError)


def test_model_urls() -> None:
    assert _common.model_url("a/b", "fill-mask", "http://e") == "http://e/models/a/b"
    assert (
        _common.model_url("a/b", "sentence-similarity", "http://e")
        == "http://e/pipeline/sentence-similarity/a/b"
    )
    assert _common.recommended_from_tasks({"a": {"widgetModels": ["m"]}, "b": {"widgetModels": []}, "c": {"widgetModels": [""]}}) == {"a": "m", "b": None, "c": None}  # fmt: skip


def test_proxy_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    env = _common.environment_proxies(trust_env=True)
    assert _common.proxy_for("https://example.com/x", None, env) == "http://proxy:3128"
    assert _common.proxy_for("https://localhost/x", None, env) is None
    assert (
        _common.proxy_for("https://example.com/x", None, _common.environment_proxies(trust_env=False)) is None
    )
    assert _common.proxy_for("https://example.com/x", {"https": "http://p2"}, env) == "http://p2"
