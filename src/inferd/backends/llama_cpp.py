"""llama.cpp runtime (llama-cpp-python) for GGUF chat models.

Serves text-generation (TGI parameters, streaming, details), chat prompts rendered with the template stored in
the GGUF, the legacy conversational task, and two labelled approximations by prompting: summarization and
question-answering (see llama_cpp_tasks).

One `Llama` holds one KV cache. Each generate or stream is a `LlamaSequence` (llama_cpp_sequence) with its own
tokens and sampler; before a step the cache is synced to that sequence (the common prefix is kept, the rest
re-evaluated), so streams that the engine interleaves on one thread stay correct, and a repeated chat prefix is not
evaluated twice. Batched decoding of concurrent streams (issue 5, llama_cpp_batch) reuses `_start` and `_emit` with
its own context and sequence ids: `batched()`.

Entry options (catalogue or models.toml `options = {...}`): `file` (the .gguf in the folder), `n_ctx` (4096),
`n_batch` (512), `n_threads` (half the cores, for one-token steps), `n_threads_batch` (every core, for steps of
several tokens), `flash_attn` (false: the model's own context), `streams_n_ctx` (KV cells shared by concurrent
streams; `n_ctx`), `streams_flash_attn` (true), `solo_stream` (false), `default_system_prompt`. The figures
behind each default are in docs/benchmarks.md ("Round 2").
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import llama_cpp_tasks as prompted
from .base import (
    Backend,
    GeneratedToken,
    Generation,
    InputError,
    StreamStep,
    TextGenerator,
    check_cancelled,
)
from .llama_cpp_batch import BatchedStreams
from .llama_cpp_params import PIPELINE_ONLY, SUPPORTED_PARAMETERS, GenerationParams, build_sampler
from .llama_cpp_sequence import LlamaSequence

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

DEFAULT_N_CTX = 4096
# TGI's default is "until the context is full"; a tiny CPU model rambling for 4k tokens helps nobody.
DEFAULT_MAX_NEW_TOKENS = 512


def _default_threads() -> int:
    """Half the cores, as llama-cpp-python's own default.

    ggml's OpenMP threads spin at every barrier: with as many threads as cores, anything else wanting a core (the
    server's event loop, another model, another process) made decoding collapse here (2 threads on 2 busy cores:
    0.5-20 tok/s, against ~100 when idle and ~60 with 1 thread either way). More threads: `options["n_threads"]`,
    best with OMP_WAIT_POLICY=PASSIVE in the environment when the machine is shared (measured ~45 tok/s).
    """
    return max(1, _cores() // 2)


def _default_batch_threads() -> int:
    """Every core, for steps of several tokens (prompts, concurrent streams decoded together).

    A step of 8 streams has 8x the work per thread barrier of a one-token step, so two threads pay off where they
    did not for one token. SmolLM2, 8 streams of 128 tokens over HTTP on 2 quiet cores: 213 against 174 tok/s, TTFT
    p99 198 against 339 ms (bench/generation_servers.py --systems "inferd (1"); in process with one core taken by
    another process: 151 against 168 tok/s, no collapse (OMP_WAIT_POLICY=PASSIVE, which `inferd serve` sets)."""
    return _cores()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _find_gguf(path: str, file: str | None) -> str:
    p = Path(path)
    if p.is_file():
        return str(p)
    if file:
        return str(p / file)
    found = sorted(p.glob("*.gguf"))
    if len(found) != 1:
        raise FileNotFoundError(f"Expected one .gguf file in {p}, found {len(found)}; set options['file'].")
    return str(found[0])


class LlamaCppBackend(Backend):
    name = "llama-cpp"

    def load(self, entry: ModelEntry, path: str) -> LlamaCppModel:
        import llama_cpp  # the runtime is imported only when a model is loaded

        options = _checked(entry.options)
        threads = options.get("n_threads") or _default_threads()
        llm = llama_cpp.Llama(
            model_path=_find_gguf(path, options.get("file")),
            n_ctx=options.get("n_ctx") or DEFAULT_N_CTX,
            n_batch=options.get("n_batch") or 512,
            n_threads=threads,
            n_threads_batch=options.get("n_threads_batch") or _default_batch_threads(),
            # The model's own context (one stream at a time, non-streamed calls) keeps plain attention, as
            # llama-cpp-python's Llama does; the context shared by concurrent streams uses flash attention
            # (`streams_flash_attn`, see llama_cpp_batch). On CPU flash attention skips the other streams' cells,
            # which plain attention multiplies through (8 streams: 160.7 vs 139.1 tok/s at 128 tokens each, 119.5
            # vs 93.7 at 512), but alone it is slower past a few hundred tokens (512 tokens: 116 vs 134).
            flash_attn=options.get("flash_attn", False),
            logits_all=False,  # logprobs come from the last position's logits, read once per step
            verbose=False,
        )
        return LlamaCppModel(
            llm,
            tasks=entry.tasks or ("text-generation",),
            default_system_prompt=options.get("default_system_prompt"),
            streams_n_ctx=options.get("streams_n_ctx") or None,
            streams_flash_attn=options.get("streams_flash_attn", True),
            solo_stream=options.get("solo_stream", False),
        )


_COUNT_OPTIONS = ("n_ctx", "n_batch", "n_threads", "n_threads_batch", "streams_n_ctx")
_FLAG_OPTIONS = ("flash_attn", "streams_flash_attn", "solo_stream")


def _checked(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """The entry's options, refused when a count or a switch has the wrong type: `bool("no")` is true and a
    negative n_ctx wraps around in ctypes, so a typo in models.toml would otherwise load a different model."""
    for name in _COUNT_OPTIONS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"option `{name}` must be a whole number (0: the default), got {value!r}")
    for name in _FLAG_OPTIONS:
        value = options.get(name)
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"option `{name}` must be true or false, got {value!r}")
    return options


class LlamaCppModel(TextGenerator):
    supported_parameters = SUPPORTED_PARAMETERS
    approximations = prompted.APPROXIMATIONS

    def __init__(
        self,
        llm: Any,
        tasks: Sequence[str],
        default_system_prompt: str | None = None,
        streams_n_ctx: int | None = None,
        streams_flash_attn: bool = True,
        solo_stream: bool = False,
    ) -> None:
        import llama_cpp

        # KV cells shared by the streams the server decodes together (`options["streams_n_ctx"]`; default the
        # model's n_ctx). A stream reserves its prompt + max_new_tokens before it starts, so 8 streams of the
        # default 512 new tokens need more than 4096 cells: with 4096 the eighth waited, then got a 429.
        self._streams_n_ctx = streams_n_ctx
        self._streams_flash_attn = streams_flash_attn
        # A stream arriving alone runs in this context (plain attention) rather than the shared one: one stream of
        # 512 tokens 1.07x the raw call instead of 0.87x, but a burst of 8 then decodes as 1 + 7 (HTTP, 8 x 128
        # tokens: 166 vs 210 tok/s, TTFT p99 570 vs 202 ms), so it is off unless the entry says `solo_stream`.
        self._solo_stream = solo_stream

        # Put before a conversation that brings no system message of its own (a catalogue option: small models
        # can behave far better under a prompt other than their template's default).
        self._default_system = default_system_prompt
        self._lib = llama_cpp
        self._llm = llm
        self.tasks = tuple(tasks)
        self._n_vocab = llm.n_vocab()
        self._vocab = llm._model.vocab
        bos = llm.token_bos()
        self._bos_text = llm._model.token_get_text(bos) if bos != -1 else ""
        self._lock = threading.Lock()  # held per step, never across a yield
        self._synced: LlamaSequence | None = None  # whose last token's logits the context holds
        self._formatter: Any = None

    # -- TextGenerator ---------------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return int(self._llm.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text))

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]]) -> str:
        if self._formatter is None:
            template = self._llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise InputError("This model has no chat template.")
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos = self._llm.token_eos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=self._bos_text,
                add_generation_prompt=True,
            )
        rendered = [_text_message(m) for m in messages]
        if self._default_system and not any(m.get("role") == "system" for m in rendered):
            rendered.insert(0, {"role": "system", "content": self._default_system})
        try:
            return str(self._formatter(messages=rendered).prompt)
        except InputError:
            raise
        except Exception as exc:  # the template's raise_exception() or a Jinja error on odd messages
            raise InputError(f"Cannot render the chat template: {exc}") from exc

    def generate(self, prompt: str, parameters: Mapping[str, Any]) -> Generation:
        seq = self._start(prompt, parameters)
        tokens: list[GeneratedToken] = []
        finish = "length"
        for step in self._steps(seq):
            tokens.append(step.token)
            finish = step.finish_reason or finish
        text = "".join(t.text for t in tokens if not t.special)
        seed = seq.params.seed if seq.params.sample else None
        return Generation(
            text=text, tokens=tokens, finish_reason=finish, prompt_tokens=seq.n_prompt, seed=seed
        )

    def stream(self, prompt: str, parameters: Mapping[str, Any]) -> Iterator[StreamStep]:
        # Validate and tokenize now, so a bad request fails before the first event is sent.
        return self._steps(self._start(prompt, parameters))

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task == "text-generation":
            return [{"generated_text": self.generate(_text_input(x), parameters).text} for x in inputs]
        if task == "summarization":
            return [self._summarize(_text_input(x), parameters) for x in inputs]
        if task == "question-answering":
            return [self._answer(x, parameters) for x in inputs]
        if task == "conversational":
            return [self._converse(x, parameters) for x in inputs]
        raise InputError(f"This model does not serve the task '{task}'.")

    def memory_bytes(self) -> int:
        meta = self._llm.metadata
        arch = meta.get("general.architecture", "llama")
        size = 0
        try:
            size = os.path.getsize(self._llm.model_path)
            layers = int(meta[f"{arch}.block_count"])
            heads, kv_heads = (
                int(meta[f"{arch}.attention.head_count"]),
                int(meta[f"{arch}.attention.head_count_kv"]),
            )
            kv_width = int(meta[f"{arch}.embedding_length"]) // heads * kv_heads
            cells = self.context_length + (self._streams_n_ctx or self.context_length)  # both contexts
            size += 2 * layers * kv_width * cells * 2  # K and V, f16
        except (KeyError, OSError, ValueError, ZeroDivisionError):
            pass
        return size

    def batched(self, max_streams: int = 8, solo: bool | None = None) -> BatchedStreams:
        """Streams decoded together in a second context sharing the weights (see llama_cpp_batch); with `solo`, a
        stream arriving alone runs in this model's own context (default: the entry's `solo_stream`)."""
        solo = self._solo_stream if solo is None else solo
        return BatchedStreams(
            self, max_streams, n_ctx=self._streams_n_ctx, solo=solo, flash_attn=self._streams_flash_attn
        )

    def close(self) -> None:
        self._synced = None
        self._llm.close()

    # -- decoding --------------------------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        # Special tokens in the text are parsed (chat prompts hold <|im_start|>...), like TGI's tokenizer.
        add_bos = not (self._bos_text and text.startswith(self._bos_text))
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def _start(self, prompt: str, parameters: Mapping[str, Any]) -> LlamaSequence:
        params = GenerationParams.parse(parameters)
        ids = self._tokenize(prompt)
        if params.truncate:
            ids = ids[-params.truncate :]
        if not ids:
            raise InputError("`inputs` cannot be empty")
        n_ctx = self.context_length
        max_new = params.max_new_tokens
        if max_new is None:
            max_new = min(DEFAULT_MAX_NEW_TOKENS, n_ctx - len(ids))
            if max_new < 1:
                raise InputError(f"`inputs` must have less than {n_ctx} tokens. Given: {len(ids)}")
        elif len(ids) + max_new > n_ctx:
            raise InputError(
                f"`inputs` tokens + `max_new_tokens` must be <= {n_ctx}. "
                f"Given: {len(ids)} `inputs` tokens and {max_new} `max_new_tokens`"
            )
        return LlamaSequence(ids, max_new, params, build_sampler(params, self._n_vocab, n_ctx, ids))

    def _sync(self, seq: LlamaSequence) -> None:
        """Make the context hold `seq.tokens` with the logits of its last token."""
        llm = self._llm
        if self._synced is not seq:
            n = min(int(llm.n_tokens), len(seq.tokens) - 1)
            differ = np.flatnonzero(llm.input_ids[:n] != np.asarray(seq.tokens[:n]))
            llm.n_tokens = int(differ[0]) if len(differ) else n
        llm.eval(seq.tokens[llm.n_tokens :])
        self._synced = seq

    def _step(self, seq: LlamaSequence) -> tuple[int, float | None]:
        """Decode what `seq` has not been through yet and sample its next token: (id, logprob)."""
        with self._lock:
            try:
                self._sync(seq)
            except Exception:
                self._synced = None  # the cache is in an unknown state: the next step re-evaluates
                raise
            token = int(seq.sampler.sample(self._llm._ctx, -1))
            logprob = self._token_logprob(seq, self._lib.llama_get_logits_ith(self._llm.ctx, -1), token)
        seq.tokens.append(token)
        return token, logprob

    def _token_logprob(self, seq: LlamaSequence, logits_ptr: Any, token: int) -> float | None:
        """The sampled token's log-probability, if its request shows it (a log-softmax over the vocabulary)."""
        if not seq.params.logprobs:
            return None
        logits = np.ctypeslib.as_array(logits_ptr, shape=(self._n_vocab,))
        top = float(logits.max())
        return float(logits[token]) - top - math.log(float(np.exp(logits - top).sum()))

    def _steps(self, seq: LlamaSequence) -> Iterator[StreamStep]:
        while True:
            check_cancelled()  # every token: a request that ended (client gone, 504) stops here
            step = self._emit(seq, *self._step(seq))
            yield step
            if step.finish_reason:
                return

    def _emit(self, seq: LlamaSequence, token: int, logprob: float | None) -> StreamStep:
        """The stream step for `seq`'s newly sampled `token`: its text, and the finish reason if it ends here."""
        seq.generated += 1
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            text = self._llm.detokenize([token], special=True).decode("utf-8", "replace")
            return StreamStep(GeneratedToken(token, text, logprob, special=True), "eos_token")
        special = bool(self._lib.llama_vocab_is_control(self._vocab, token))
        piece = self._llm.detokenize([token], special=special)
        last = seq.generated >= seq.max_new_tokens or (
            seq.deadline is not None and time.monotonic() > seq.deadline
        )
        text = piece.decode("utf-8", "replace") if special else seq.decoder.decode(piece, final=last)
        finish = "length" if last else None
        stops = seq.params.stop
        if stops and not special:
            before = len(seq.text)
            seq.text += text
            cuts = [at + len(s) for s in stops if (at := seq.text.find(s, max(0, before - len(s) + 1))) >= 0]
            if cuts:
                cut = min(cuts)
                text = text[: len(text) - (len(seq.text) - cut)]
                seq.text = seq.text[:cut]
                finish = "stop_sequence"
        return StreamStep(GeneratedToken(token, text, logprob, special=special), finish)

    # -- prompted tasks --------------------------------------------------------------------------------------

    def _task_params(self, task: str, parameters: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict:
        params = prompted.generation_parameters(task, parameters, defaults)
        unknown = sorted(set(params) - SUPPORTED_PARAMETERS - PIPELINE_ONLY)
        if unknown:
            raise InputError(f"The following `generate_parameters` are not used by the model: {unknown}")
        return params

    def _chat(self, messages: list[dict[str, str]], params: Mapping[str, Any]) -> Generation:
        return self.generate(self.chat_prompt(messages), params)

    def _summarize(self, text: str, parameters: Mapping[str, Any]) -> dict[str, str]:
        params = self._task_params("summarization", parameters, {"max_new_tokens": 96})
        return {"summary_text": self._chat(prompted.summarize_messages(text), params).text.strip()}

    def _answer(self, inputs: Any, parameters: Mapping[str, Any]) -> Any:
        if not isinstance(inputs, Mapping) or not inputs.get("question") or not inputs.get("context"):
            raise InputError("question-answering needs a non-empty `question` and `context`.")
        question, context = str(inputs["question"]), str(inputs["context"])
        params = self._task_params("question-answering", {}, {"max_new_tokens": 48})
        gen = self._chat(prompted.qa_messages(question, context), params)
        logprobs = [t.logprob for t in gen.tokens if not t.special and t.logprob is not None]
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        result = prompted.qa_output(gen.text, question, context, confidence)
        return [result] if (parameters.get("top_k") or 1) > 1 else result

    def _converse(self, inputs: Any, parameters: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(inputs, Mapping) or not str(inputs.get("text") or "").strip():
            raise InputError("conversational needs a non-empty `text`.")
        messages, warnings = prompted.conversation_messages(inputs)
        params = self._task_params("conversational", parameters, {"max_new_tokens": 256})
        return prompted.conversation_output(inputs, self._chat(messages, params).text.strip(), warnings)


def _text_input(x: Any) -> str:
    if not isinstance(x, str) or not x:
        raise InputError("`inputs` must be a non-empty string.")
    return x


def _text_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI message with its content as plain text (the template of a text model expects a string)."""
    content = message.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise InputError(f"This model reads text only; got a message part of type '{kind}'.")
            parts.append(str(part.get("text", "")))
        content = "".join(parts)
    return {**message, "content": "" if content is None else str(content)}
