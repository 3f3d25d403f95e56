"""The clients: `InferenceClient` (sync, generated) and `AsyncInferenceClient` (async, the source)."""

from __future__ import annotations

from ..errors import InferenceConnectionError, InvalidResponseError
from ._async_client import AsyncInferenceClient
from ._common import ModelStatus
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
