"""AsyncInferenceClient: the async source. `scripts/unasync.py` generates `InferenceClient` from it."""

from __future__ import annotations

from ._async_chat import _AsyncChat
from ._async_generation import _AsyncGeneration
from ._async_media_tasks import _AsyncMediaTasks
from ._async_text_tasks import _AsyncTextTasks


class AsyncInferenceClient(_AsyncGeneration, _AsyncChat, _AsyncMediaTasks, _AsyncTextTasks):
    """Call hosted or local inference servers: one method per task, one pooled connection per client.

    >>> async with AsyncInferenceClient(base_url="http://127.0.0.1:8000") as client:
    ...     await client.text_classification("I love this movie")
    [{'label': 'POSITIVE', 'score': 0.9998}, {'label': 'NEGATIVE', 'score': 0.0002}]
    """
