"""inferd: a drop-in InferenceClient, a local multi-model inference server, and a CLI.

from inferd import InferenceClient
client = InferenceClient()
client.text_classification("I love this movie")
"""

from __future__ import annotations

from .errors import (
    BadRequestError,
    GenerationError,
    HfHubHTTPError,
    HTTPError,
    IncompleteGenerationError,
    InferdError,
    InferenceTimeoutError,
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

__version__ = "0.1.0"

__all__ = [
    "BadRequestError",
    "GenerationError",
    "HTTPError",
    "HfHubHTTPError",
    "IncompleteGenerationError",
    "InferdError",
    "InferenceTimeoutError",
    "ModelLoadingError",
    "NotFoundError",
    "NotSupportedError",
    "OverloadedError",
    "PayloadTooLargeError",
    "TextGenerationError",
    "UnauthorizedError",
    "UnknownError",
    "ValidationError",
    "__version__",
]
