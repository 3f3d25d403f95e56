"""chat_completion (OpenAI protocol, spec §11), streaming included, and its alias
`client.chat.completions.create`. Payloads and parsing are the pure `_chat` module; this is the I/O shell.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, overload

from . import _common as core
from ._async_base import _AsyncBase
from ._chat import (
    ChatCompletionOutput,
    ChatCompletionStreamOutput,
    build_chat_payload,
    chat_url,
    parse_chat_response,
    parse_chat_stream_event,
)
from ._transport_async import AsyncStreamResponse


class _AsyncChat(_AsyncBase):
    @property
    def chat(self) -> core.Chat:
        """OpenAI's spelling: `client.chat.completions.create(messages=..., ...)` is `chat_completion`."""
        return core.Chat(self.chat_completion)

    @overload
    async def chat_completion(
        self,
        messages: list[Any],
        *,
        model: str | None = None,
        stream: Literal[False] = False,
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        logprobs: bool | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        presence_penalty: float | None = None,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        stream_options: dict[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        tool_prompt: str | None = None,
        tools: list[Any] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> ChatCompletionOutput: ...

    @overload
    async def chat_completion(
        self,
        messages: list[Any],
        *,
        model: str | None = None,
        stream: Literal[True],
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        logprobs: bool | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        presence_penalty: float | None = None,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        stream_options: dict[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        tool_prompt: str | None = None,
        tools: list[Any] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> AsyncIterator[ChatCompletionStreamOutput]: ...

    @overload
    async def chat_completion(
        self,
        messages: list[Any],
        *,
        model: str | None = None,
        stream: bool = False,
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        logprobs: bool | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        presence_penalty: float | None = None,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        stream_options: dict[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        tool_prompt: str | None = None,
        tools: list[Any] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> ChatCompletionOutput | AsyncIterator[ChatCompletionStreamOutput]: ...

    async def chat_completion(
        self,
        messages: list[Any],
        *,
        model: str | None = None,
        stream: bool = False,
        frequency_penalty: float | None = None,
        logit_bias: dict[str, float] | None = None,
        logprobs: bool | None = None,
        max_tokens: int | None = None,
        n: int | None = None,
        presence_penalty: float | None = None,
        response_format: dict[str, Any] | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        stream_options: dict[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        tool_prompt: str | None = None,
        tools: list[Any] | None = None,
        top_logprobs: int | None = None,
        top_p: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> ChatCompletionOutput | AsyncIterator[ChatCompletionStreamOutput]:
        """OpenAI-compatible chat; `stream=True` yields chunks. Also `client.chat.completions.create(...)`.

        >>> client.chat_completion([{"role": "user", "content": "Hi!"}], max_tokens=20).choices[0].message.content
        'Hello! How can I help you today?'
        """
        model = model or self.model
        if model is None and self.base_url is not None:
            published = await self._server_tasks(self.base_url)
            model = (published or {}).get("chat-completion") or (published or {}).get("text-generation")
        url = chat_url(model, self.base_url, self._endpoint)
        parameters = {
            "frequency_penalty": frequency_penalty,
            "logit_bias": logit_bias,
            "logprobs": logprobs,
            "max_tokens": max_tokens,
            "n": n,
            "presence_penalty": presence_penalty,
            "response_format": response_format,
            "seed": seed,
            "stop": stop,
            "stream": stream,
            "stream_options": stream_options,
            "temperature": temperature,
            "tool_choice": tool_choice,
            "tool_prompt": tool_prompt,
            "tools": tools,
            "top_logprobs": top_logprobs,
            "top_p": top_p,
        }
        model_id = model if model is not None and not core.is_url(model) else None
        payload = build_chat_payload(messages, model=model_id, parameters=parameters, extra_body=extra_body)
        response = await self._request(
            "POST",
            url,
            task="text-generation",
            body=core.encode_json(payload),
            content_type="application/json",
            stream=stream,
        )
        if stream:
            return self._chat_stream(response)
        return parse_chat_response(core.decode_json(response))

    async def _chat_stream(self, response: AsyncStreamResponse) -> AsyncIterator[ChatCompletionStreamOutput]:
        events = self._events(response)
        try:
            async for data in events:
                chunk = parse_chat_stream_event(data)
                if chunk is None:
                    break
                yield chunk
        finally:
            await events.aclose()
