"""The legacy `InferenceApi` (spec §9), kept so v0.21 code runs unchanged. Deprecated: use InferenceClient."""

from __future__ import annotations

import warnings
from typing import Any

from . import _common as core
from ._transport_sync import SyncTransport

ALL_TASKS = [
    # NLP
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "conversational", "feature-extraction",
    "text-generation", "text2text-generation", "fill-mask", "sentence-similarity",
    # Audio
    "text-to-speech", "automatic-speech-recognition", "audio-to-audio", "audio-classification",
    "voice-activity-detection",
    # Computer vision
    "image-classification", "object-detection", "image-segmentation", "text-to-image", "image-to-image",
    # Others
    "tabular-classification", "tabular-regression",
]  # fmt: skip


class InferenceApi:
    """Call one model of the hosted Inference API; errors come back as the server's JSON, not exceptions.

    >>> api = InferenceApi("distilbert-base-uncased-finetuned-sst-2-english")
    >>> api(inputs="I like you")
    [[{'label': 'POSITIVE', 'score': 0.9998}, {'label': 'NEGATIVE', 'score': 0.0001}]]
    """

    def __init__(self, repo_id: str, task: str | None = None, token: str | None = None, gpu: bool = False):
        warnings.warn(
            "`InferenceApi` is deprecated and will be removed in version 1.0. Use `InferenceClient` instead.",
            FutureWarning,
            stacklevel=2,
        )
        self._transport = SyncTransport()
        self.headers = core.build_headers(core.resolve_token(token), None, None)
        info_url = f"{core.hub_endpoint()}/api/models/{repo_id}"
        info = self._transport.request("GET", info_url, headers=self.headers, body=None, timeout=30)
        if info.status_code >= 400:
            raise core.http_error(info, url=info_url, task=None)
        pipeline_tag = (info.json_body or {}).get("pipeline_tag")
        if pipeline_tag is None and task is None:
            raise ValueError(
                "Task not specified in the repository. Please add it to the model card using pipeline_tag"
                " (https://huggingface.co/docs#how-is-a-models-type-of-inference-api-and-widget-determined)"
            )
        if task is not None and task != pipeline_tag:
            if task not in ALL_TASKS:
                raise ValueError(f"Invalid task {task}. Make sure it's valid.")
            warnings.warn(
                "You're using a different task than the one specified in the repository. Be sure to know what"
                " you're doing :)",
                UserWarning,
                stacklevel=2,
            )
            self.task = task
        else:
            self.task = str(pipeline_tag)
        self.api_url = f"{core.inference_endpoint()}/pipeline/{self.task}/{repo_id}"
        self.options = {"wait_for_model": True, "use_gpu": gpu}

    def __repr__(self) -> str:
        return f"InferenceAPI(api_url='{self.api_url}', task='{self.task}', options={self.options})"

    def __call__(
        self,
        inputs: str | dict[str, Any] | list[Any] | None = None,
        params: dict[str, Any] | None = None,
        data: bytes | None = None,
        raw_response: bool = False,
    ) -> Any:
        payload: dict[str, Any] = {"options": self.options}
        if inputs:
            payload["inputs"] = inputs
        if params:
            payload["parameters"] = params
        headers = dict(self.headers)
        if data is not None:  # as requests did: the binary body wins and the JSON is not sent
            body = data
        else:
            body = core.encode_json(payload)
            headers["content-type"] = "application/json"
        response = self._transport.request("POST", self.api_url, headers=headers, body=body, timeout=None)
        if raw_response:
            return response
        content_type = (response.headers.get("content-type") or "").split(";")[0].strip()
        if content_type.startswith("image"):
            from ._inputs import pil_image

            return pil_image(response.content)
        if content_type == "application/json":
            return response.json()
        raise NotImplementedError(
            f"{content_type} output type is not implemented yet. You can pass `raw_response=True` to get the"
            " raw `Response` object and parse the output by yourself."
        )
