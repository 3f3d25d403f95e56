"""Text generation with transformers: TGI-style parameters, token-by-token streaming, chat templates.

`stream()` is the one implementation (`generate()` drains it). transformers' `generate` pushes tokens to a
streamer from inside its loop, so it runs in a helper thread while the caller's thread (the engine gives each
generator one) reads a queue. Closing the iterator early sets a flag a StoppingCriteria reads, so generation
stops at the next token. Log-probabilities are the model's distribution after repetition penalty and before
sampling warpers (temperature, top-k/p), like TGI's.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..base import GeneratedToken, Generation, InputError, StreamStep, TextGenerator, check_cancelled
from ..weights import check_finite_weights
from ._common import load_kwargs, module_bytes

if TYPE_CHECKING:
    from ...catalogue import ModelEntry

DEFAULT_MAX_NEW_TOKENS = 100
_DONE = object()


class _Run:
    """The shared state of one generation: flags read by generate's loop, a queue read by the caller."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.tokens: queue.Queue[Any] = queue.Queue()
        self.logprobs: list[torch.Tensor] = []


def _helpers(run: _Run, skip_prompt: bool) -> tuple[Any, Any, Any]:
    from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    class Record(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            run.logprobs.append(torch.log_softmax(scores[0].float(), dim=-1))
            return scores

    class Cancel(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), run.cancel.is_set(), dtype=torch.bool)

    class Streamer(BaseStreamer):
        def __init__(self) -> None:
            self.skip = skip_prompt

        def put(self, value: torch.Tensor) -> None:
            if self.skip:  # decoder-only models first echo the prompt
                self.skip = False
                return
            for token_id in value.reshape(-1).tolist():
                logprob = run.logprobs[-1][token_id].item() if run.logprobs else None
                run.tokens.put((int(token_id), logprob))

        def end(self) -> None:
            run.tokens.put(_DONE)

    return LogitsProcessorList([Record()]), StoppingCriteriaList([Cancel()]), Streamer()


class TransformersGenerator(TextGenerator):
    """A causal language model: text-generation (TGI, OpenAI) and the legacy conversational task."""

    # `details` and `return_full_text` shape the answer: the server's TGI layer applies them to the Generation.
    supported_parameters = frozenset(
        {
            "do_sample",
            "max_new_tokens",
            "repetition_penalty",
            "seed",
            "stop",
            "temperature",
            "top_k",
            "top_p",
            "truncate",
            "typical_p",
        }
    )

    def __init__(self, entry: ModelEntry, path: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.entry = entry
        self.tokenizer = AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=entry.trust_remote_code
        )
        self.model = AutoModelForCausalLM.from_pretrained(path, **load_kwargs(entry)).eval()
        check_finite_weights(self.model.named_parameters(), f"Model {entry.model_id}")
        self.tasks = tuple(entry.tasks)
        self.approximations = dict(entry.approximations)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.special_ids = set(self.tokenizer.all_special_ids)
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self.default_max_new_tokens = int(entry.options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))

    # -- the TextGenerator interface -------------------------------------------------------------------

    def generate(self, prompt: str, parameters: Mapping[str, Any]) -> Generation:
        tokens: list[GeneratedToken] = []
        finish = "length"
        meta: dict[str, Any] = {}
        for step in self._stream(prompt, parameters, meta):
            tokens.append(step.token)
            finish = step.finish_reason or finish
        text = "".join(t.text for t in tokens)
        return Generation(
            text=text,
            tokens=tokens,
            finish_reason=finish,
            prompt_tokens=meta.get("prompt_tokens", 0),
            seed=meta.get("seed"),
        )

    def stream(self, prompt: str, parameters: Mapping[str, Any]) -> Iterator[StreamStep]:
        return self._stream(prompt, parameters, {})

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]]) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise InputError(f"Model '{self.entry.model_id}' has no chat template.")
        plain = [{"role": str(m.get("role", "user")), "content": _text(m.get("content"))} for m in messages]
        try:
            rendered = self.tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja's TemplateError: the template refused these messages
            raise InputError(f"The chat template cannot render these messages: {exc}") from exc
        return str(rendered)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task == "conversational":
            return [self._conversation(i, parameters) for i in inputs]
        if task != "text-generation":
            raise InputError(f"Model '{self.entry.model_id}' does not serve task '{task}'.")
        return super().predict(task, inputs, parameters)

    def memory_bytes(self) -> int:
        return module_bytes([self.model]) if self.model is not None else 0

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]  # the weights go with the last reference

    # -- internals -------------------------------------------------------------------------------------

    def _conversation(self, item: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
        past = [str(x) for x in item.get("past_user_inputs") or []]
        replies = [str(x) for x in item.get("generated_responses") or []]
        messages: list[dict[str, str]] = []
        for i, user in enumerate(past):
            messages.append({"role": "user", "content": user})
            if i < len(replies):
                messages.append({"role": "assistant", "content": replies[i]})
        messages.append({"role": "user", "content": str(item["text"])})
        # The legacy task's max_length bounds the answer (the prompt is the template's business here).
        tgi = {"max_new_tokens": parameters.get("max_length") or self.default_max_new_tokens}
        for name in ("repetition_penalty", "temperature", "top_k", "top_p"):
            if parameters.get(name) is not None:
                tgi[name] = parameters[name]
                tgi["do_sample"] = name != "repetition_penalty" or tgi.get("do_sample", False)
        extra = {k: parameters[k] for k in ("min_length", "max_time") if parameters.get(k) is not None}
        reply = self.generate(self.chat_prompt(messages), {**tgi, "_extra": extra}).text.strip()
        return {
            "generated_text": reply,
            "conversation": {
                "past_user_inputs": [*past, str(item["text"])],
                "generated_responses": [*replies, reply],
            },
            "warnings": [],
        }

    def _prepare(self, prompt: str, p: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
        ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        if p.get("truncate"):
            ids = ids[:, -int(p["truncate"]) :]
        if ids.shape[1] == 0:
            raise InputError("The prompt is empty.")
        max_new = int(p.get("max_new_tokens") or self.default_max_new_tokens)
        if self.max_positions and ids.shape[1] + max_new > self.max_positions:
            raise InputError(
                f"`inputs` tokens + `max_new_tokens` must be <= {self.max_positions}. "
                f"Given: {ids.shape[1]} `inputs` tokens and {max_new} `max_new_tokens`"
            )
        do_sample = (
            bool(p.get("do_sample"))
            or any(p.get(k) is not None for k in ("temperature", "top_k", "top_p", "typical_p"))
            and bool(p.get("do_sample", True))
        )
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "max_new_tokens": max_new,
            "do_sample": do_sample,
            "pad_token_id": self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else next(iter(self.eos_ids), 0),
        }
        if p.get("repetition_penalty") is not None:
            kwargs["repetition_penalty"] = float(p["repetition_penalty"])
        seed = None
        if do_sample:
            for name in ("temperature", "top_k", "top_p", "typical_p"):
                if p.get(name) is not None:
                    kwargs[name] = p[name]
            seed = int(p["seed"]) if p.get("seed") is not None else random.randrange(2**63)
        extra = p.get("_extra") or {}
        if extra.get("min_length"):
            kwargs["min_new_tokens"] = int(extra["min_length"])
        if extra.get("max_time"):
            kwargs["max_time"] = float(extra["max_time"])
        return kwargs, seed

    def _stream(self, prompt: str, p: Mapping[str, Any], meta: dict[str, Any]) -> Iterator[StreamStep]:
        unknown = sorted(
            k for k in p if p[k] is not None and k not in self.supported_parameters and k != "_extra"
        )
        if unknown:
            raise InputError(f"The following `model_kwargs` are not used by the model: {unknown}")
        kwargs, seed = self._prepare(prompt, p)
        meta.update(prompt_tokens=int(kwargs["input_ids"].shape[1]), seed=seed)
        stops = [s for s in (p.get("stop") or []) if s]
        run = _Run()
        processors, criteria, streamer = _helpers(run, skip_prompt=True)
        error: list[BaseException] = []

        def work() -> None:
            try:
                if seed is not None:
                    torch.manual_seed(seed)
                with torch.inference_mode():
                    self.model.generate(
                        **kwargs, logits_processor=processors, stopping_criteria=criteria, streamer=streamer
                    )
            except BaseException as exc:  # handed to the reading thread
                error.append(exc)
                run.tokens.put(_DONE)

        thread = threading.Thread(target=work, name=f"generate-{self.entry.model_id}", daemon=True)
        # Checked now (errors before the first token), started on the first next(): a stream that is never
        # read costs nothing.
        return self._read(run, thread, error, stops, kwargs["max_new_tokens"])

    def _read(
        self, run: _Run, thread: threading.Thread, error: list[BaseException], stops: list[str], max_new: int
    ) -> Iterator[StreamStep]:
        """Yield each token once the next one (or the end) is known, so the last step carries the reason."""
        thread.start()
        ids: list[int] = []
        emitted = ""
        pending: GeneratedToken | None = None
        reason = "length"
        try:
            while True:
                item = run.tokens.get()
                if item is _DONE:
                    break
                check_cancelled()  # the request ended: the finally below stops generate at its next token
                if pending is not None:
                    yield StreamStep(pending)
                token_id, logprob = item
                ids.append(token_id)
                full = self.tokenizer.decode(ids, skip_special_tokens=True)
                # A token's text is what it adds to the decoded output; a partial UTF-8 character waits.
                text = "" if full.endswith("\ufffd") or not full.startswith(emitted) else full[len(emitted) :]
                emitted += text
                pending = GeneratedToken(
                    id=token_id, text=text, logprob=logprob, special=token_id in self.special_ids
                )
                if token_id in self.eos_ids:
                    reason = "eos_token"
                    break
                if stops and any(s in full for s in stops):
                    reason = "stop_sequence"
                    break
                if len(ids) >= max_new:
                    break
            if error:
                raise error[0]
            if pending is not None:
                yield StreamStep(pending, finish_reason=reason)
        finally:
            run.cancel.set()  # finished, stopped, or the reader left early: generation ends at the next token
            thread.join(timeout=30)


def _text(content: Any) -> str:
    """OpenAI content: a string, or a list of parts of which the text ones are kept."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else str(content)
