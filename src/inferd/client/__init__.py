"""The clients: `InferenceClient` (sync, generated) and `AsyncInferenceClient` (async, the source)."""

from __future__ import annotations

from ._async_client import AsyncInferenceClient
from ._common import InferenceConnectionError, InvalidResponseError, ModelStatus
from ._retry import RetryPolicy
from ._sync_client import InferenceClient

__all__ = [
    "AsyncInferenceClient",
    "InferenceClient",
    "InferenceConnectionError",
    "InvalidResponseError",
    "ModelStatus",
    "RetryPolicy",
]
