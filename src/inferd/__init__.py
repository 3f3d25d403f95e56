"""inferd: a drop-in InferenceClient, a local multi-model inference server, and a CLI.

from inferd import InferenceClient
client = InferenceClient()
client.text_classification("I love this movie")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    BadRequestError,
    GenerationError,
    HfHubHTTPError,
    HTTPError,
    IncompleteGenerationError,
    InferdError,
    InferenceConnectionError,
    InferenceTimeoutError,
    InvalidResponseError,
    ModelLoadingError,
    NotFoundError,
    NotSupportedError,
    OverloadedError,
    PayloadTooLargeError,
    TextGenerationError,
    UnauthorizedError,
    UnknownError,
    ValidationError,
)

if TYPE_CHECKING:
    from .client import (
        AsyncInferenceClient,
        InferenceClient,
        ModelStatus,
        RetryPolicy,
    )
    from .client._chat import ChatCompletionOutput, ChatCompletionStreamOutput
    from .client._text_generation import (
        BestOfSequence,
        Details,
        FinishReason,
        InputToken,
        StreamDetails,
        TextGenerationResponse,
        TextGenerationStreamResponse,
        Token,
    )
    from .client.inference_api import InferenceApi

# The clients load on first use: `import inferd` stays cheap (no aiohttp, no urllib3 until needed).
_LAZY = {
    "AsyncInferenceClient": "inferd.client",
    "BestOfSequence": "inferd.client._text_generation",
    "ChatCompletionOutput": "inferd.client._chat",
    "ChatCompletionStreamOutput": "inferd.client._chat",
    "Details": "inferd.client._text_generation",
    "FinishReason": "inferd.client._text_generation",
    "InferenceApi": "inferd.client.inference_api",
    "InferenceClient": "inferd.client",
    "InputToken": "inferd.client._text_generation",
    "ModelStatus": "inferd.client",
    "RetryPolicy": "inferd.client",
    "StreamDetails": "inferd.client._text_generation",
    "TextGenerationResponse": "inferd.client._text_generation",
    "TextGenerationStreamResponse": "inferd.client._text_generation",
    "Token": "inferd.client._text_generation",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'inferd' has no attribute {name!r}")


__all__ = [
    "AsyncInferenceClient",
    "BadRequestError",
    "BestOfSequence",
    "ChatCompletionOutput",
    "ChatCompletionStreamOutput",
    "Details",
    "FinishReason",
    "GenerationError",
    "HTTPError",
    "HfHubHTTPError",
    "IncompleteGenerationError",
    "InferdError",
    "InferenceApi",
    "InferenceClient",
    "InferenceConnectionError",
    "InferenceTimeoutError",
    "InputToken",
    "InvalidResponseError",
    "ModelLoadingError",
    "ModelStatus",
    "NotFoundError",
    "NotSupportedError",
    "OverloadedError",
    "PayloadTooLargeError",
    "RetryPolicy",
    "StreamDetails",
    "TextGenerationError",
    "TextGenerationResponse",
    "TextGenerationStreamResponse",
    "Token",
    "UnauthorizedError",
    "UnknownError",
    "ValidationError",
    "__version__",
]
