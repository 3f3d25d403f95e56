"""text_generation (TGI protocol, spec §6), streaming included. Payloads and parsing are the pure
`_text_generation` module; this is the I/O shell.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any, Literal, overload

from ..errors import BadRequestError
from . import _common as core
from ._async_base import _AsyncBase
from ._text_generation import (
    NON_TGI_PARAMETERS,
    TextGenerationResponse,
    TextGenerationStreamResponse,
    build_payload,
    parse_model_kwargs_error,
    parse_response,
    parse_stream_event,
)
from ._transport_async import AsyncStreamResponse

_UNSUPPORTED = core.UNSUPPORTED_PARAMETERS
_NOT_TGI = "API endpoint/model for text-generation is not served via TGI."


class _AsyncGeneration(_AsyncBase):
    @overload
    async def text_generation(
        self,
        prompt: str,
        *,
        details: Literal[False] = False,
        stream: Literal[False] = False,
        model: str | None = None,
        do_sample: bool = False,
        max_new_tokens: int = 20,
        best_of: int | None = None,
        repetition_penalty: float | None = None,
        return_full_text: bool = False,
        seed: int | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool = False,
        decoder_input_details: bool = False,
        stop: list[str] | None = None,
        frequency_penalty: float | None = None,
        grammar: dict[str, Any] | None = None,
        top_n_tokens: int | None = None,
        adapter_id: str | None = None,
    ) -> str: ...

    @overload
    async def text_generation(
        self,
        prompt: str,
        *,
        details: Literal[True],
        stream: Literal[False] = False,
        model: str | None = None,
        do_sample: bool = False,
        max_new_tokens: int = 20,
        best_of: int | None = None,
        repetition_penalty: float | None = None,
        return_full_text: bool = False,
        seed: int | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool = False,
        decoder_input_details: bool = False,
        stop: list[str] | None = None,
        frequency_penalty: float | None = None,
        grammar: dict[str, Any] | None = None,
        top_n_tokens: int | None = None,
        adapter_id: str | None = None,
    ) -> TextGenerationResponse: ...

    @overload
    async def text_generation(
        self,
        prompt: str,
        *,
        details: Literal[False] = False,
        stream: Literal[True],
        model: str | None = None,
        do_sample: bool = False,
        max_new_tokens: int = 20,
        best_of: int | None = None,
        repetition_penalty: float | None = None,
        return_full_text: bool = False,
        seed: int | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool = False,
        decoder_input_details: bool = False,
        stop: list[str] | None = None,
        frequency_penalty: float | None = None,
        grammar: dict[str, Any] | None = None,
        top_n_tokens: int | None = None,
        adapter_id: str | None = None,
    ) -> AsyncIterator[str]: ...

    @overload
    async def text_generation(
        self,
        prompt: str,
        *,
        details: Literal[True],
        stream: Literal[True],
        model: str | None = None,
        do_sample: bool = False,
        max_new_tokens: int = 20,
        best_of: int | None = None,
        repetition_penalty: float | None = None,
        return_full_text: bool = False,
        seed: int | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool = False,
        decoder_input_details: bool = False,
        stop: list[str] | None = None,
        frequency_penalty: float | None = None,
        grammar: dict[str, Any] | None = None,
        top_n_tokens: int | None = None,
        adapter_id: str | None = None,
    ) -> AsyncIterator[TextGenerationStreamResponse]: ...

    @overload
    async def text_generation(
        self,
        prompt: str,
        *,
        details: bool = False,
        stream: bool = False,
        model: str | None = None,
        do_sample: bool = False,
        max_new_tokens: int = 20,
        best_of: int | None = None,
        repetition_penalty: float | None = None,
        return_full_text: bool = False,
        seed: int | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool = False,
        decoder_input_details: bool = False,
        stop: list[str] | None = None,
        frequency_penalty: float | None = None,
        grammar: dict[str, Any] | None = None,
        top_n_tokens: int | None = None,
        adapter_id: str | None = None,
    ) -> str | TextGenerationResponse | AsyncIterator[str] | AsyncIterator[TextGenerationStreamResponse]: ...

    async def text_generation(
        self,
        prompt: str,
        *,
        details: bool = False,
        stream: bool = False,
        model: str | None = None,
        do_sample: bool = False,
        max_new_tokens: int = 20,
        best_of: int | None = None,
        repetition_penalty: float | None = None,
        return_full_text: bool = False,
        seed: int | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool = False,
        decoder_input_details: bool = False,
        stop: list[str] | None = None,
        frequency_penalty: float | None = None,
        grammar: dict[str, Any] | None = None,
        top_n_tokens: int | None = None,
        adapter_id: str | None = None,
    ) -> str | TextGenerationResponse | AsyncIterator[str] | AsyncIterator[TextGenerationStreamResponse]:
        """Continue `prompt`; `details=True` gives typed tokens, `stream=True` yields tokens as they come.

        >>> client.text_generation("The huggingface_hub library is ", max_new_tokens=12)
        'a library that lets you download and upload models.'
        """
        parameters = {
            "do_sample": do_sample,
            "max_new_tokens": max_new_tokens,
            "repetition_penalty": repetition_penalty,
            "return_full_text": return_full_text,
            "stop": stop if stop is not None else stop_sequences,
            "seed": seed,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "truncate": truncate,
            "typical_p": typical_p,
            "best_of": best_of,
            "watermark": watermark,
            "details": details,
            "decoder_input_details": decoder_input_details,
            "frequency_penalty": frequency_penalty,
            "grammar": grammar,
            "top_n_tokens": top_n_tokens,
            "adapter_id": adapter_id,
        }
        url = await self._resolve_url(model, "text-generation")
        while True:
            unsupported = _UNSUPPORTED.get(url, set())
            if unsupported and stream:
                raise ValueError(
                    f"{_NOT_TGI} Cannot return output as a stream. Please pass `stream=False` as input."
                )
            payload, dropped = build_payload(
                prompt, stream=stream, parameters=parameters, unsupported=unsupported
            )
            if dropped:
                warnings.warn(f"{_NOT_TGI} Ignoring parameters {dropped}.", UserWarning, stacklevel=2)
            with_details = details and "details" not in unsupported
            if details and not with_details:
                warnings.warn(
                    f"{_NOT_TGI} Parameter `details=True` will be ignored meaning only the generated text will be"
                    " returned.",
                    UserWarning,
                    stacklevel=2,
                )
            try:
                response = await self._request(
                    "POST",
                    url,
                    task="text-generation",
                    body=core.encode_json(payload),
                    content_type="application/json",
                    stream=stream,
                )
            except BadRequestError as exc:
                refused = parse_model_kwargs_error(exc.server_message or "")
                # As v0.21's _set_as_non_tgi: a server refusing generation kwargs is not TGI, so every TGI-only
                # parameter goes (details=True then returns the text, with a warning), plus any other it named.
                not_tgi = {*NON_TGI_PARAMETERS, *(refused or ())}
                if refused is not None and not not_tgi <= unsupported:
                    _UNSUPPORTED[url] = unsupported | not_tgi
                    continue
                raise
            break
        if stream:
            return self._generation_stream(response, details=with_details)
        return parse_response(core.decode_json(response), details=with_details)

    async def _generation_stream(self, response: AsyncStreamResponse, *, details: bool) -> AsyncIterator[Any]:
        if "json" in (response.headers.get("content-type") or ""):
            # A server that does not stream answered the whole text at once.
            yield parse_response(core.decode_json(await response.read()), details=False)
            return
        events = self._events(response)
        try:
            async for data in events:
                item = parse_stream_event(data, details=details)
                if item is None:
                    break
                yield item
        finally:
            await events.aclose()
