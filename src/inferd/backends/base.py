"""The one interface a model runtime implements: load a model, predict a batch.

A backend is constructed with no arguments and turns a catalogue entry into a `Model`. The server core is
async; every method here is sync and runs in a worker thread (the server may keep one dedicated thread per
model when a runtime needs it, e.g. llama.cpp).

What a backend receives per input, by the task's InputKind (the server decodes the wire before):
  TEXT -> str; IMAGE -> PIL.Image.Image (RGB); AUDIO -> inferd.tasks.Audio (mono float32, native rate);
  TABLE -> dict[str, list[str]]; IMAGE_QUESTION -> {"image": PIL.Image, "question": str};
  QUESTION_CONTEXT -> {"question", "context"}; TABLE_QUERY -> {"table", "query"};
  SENTENCES -> {"source_sentence", "sentences"}; CONVERSATION -> {"text", "past_user_inputs", "generated_responses"}.
What it returns per input is the task's result in the wire shape (servers.md §1.5 column b) with media left as
objects: PIL images (text-to-image, image-to-image, segmentation masks) and inferd.tasks.Audio (text-to-speech,
audio-to-audio blobs); the server encodes them per `Accept`. Text-classification returns the inner list
[{label, score}]; the server adds the outer list. Feature-extraction returns a numpy array per input.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..catalogue import ModelEntry


class InputError(ValueError):
    """What the user sent cannot be used by this model (empty text, too long, wrong labels...).

    The server answers it as a 4xx with this message; any other exception from a backend is the server's fault.
    """


class Cancelled(Exception):
    """The request a model call works for has ended (its client left, or it timed out): the call stops early."""


class Busy(Exception):
    """The model cannot take this request now (e.g. no KV cache space within a bounded wait): the server answers
    429 with `retry_after_s` instead of making the caller wait for a turn that may not come."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# The cancel flag of the model call running on this thread, set by the server when its caller goes away.
_CALL = threading.local()


def cancel_requested() -> bool:
    """True once the caller of the model call running on this thread has gone.

    Long loops check it between steps (a decode loop every token, a batch between chunks) and stop: an abandoned
    request must not hold the model's thread for the requests behind it. Outside a server call: always False."""
    flag = getattr(_CALL, "cancel", None)
    return flag is not None and flag.is_set()


def check_cancelled() -> None:
    """Raise Cancelled if `cancel_requested()`."""
    if cancel_requested():
        raise Cancelled("the request ended; its work was stopped")


@contextlib.contextmanager
def cancellable(flag: threading.Event) -> Iterator[None]:
    """Make `flag` what `cancel_requested()` reads on this thread for the duration (the server's model thread)."""
    previous = getattr(_CALL, "cancel", None)
    _CALL.cancel = flag
    try:
        yield
    finally:
        _CALL.cancel = previous


@dataclass
class GeneratedToken:
    id: int
    text: str
    logprob: float | None = None
    special: bool = False


@dataclass
class Generation:
    """What a text generator produced for one prompt."""

    text: str
    tokens: list[GeneratedToken] = field(default_factory=list)
    finish_reason: str = "length"  # "length" | "eos_token" | "stop_sequence"
    prompt_tokens: int = 0
    seed: int | None = None


@dataclass
class StreamStep:
    """One streamed token; the last step of a stream carries the finish reason."""

    token: GeneratedToken
    finish_reason: str | None = None


class StreamBatch(Protocol):
    """Several streams decoded together (optional; see `TextGenerator.batched`). Driven from the model's thread:

        batch = model.batched(max_streams=8)
        h = batch.add(prompt, parameters)     # InputError now for a bad request
        for h, step in batch.step(): ...      # one decode for every running stream; a StreamStep or an Exception
        batch.cancel(h)                       # its consumer left: free its sequence now

    A stream ends with a step carrying a finish reason, or with an Exception in its place (that stream only; an
    exception raised by `step` itself ends every stream). Either way the batch has already freed it. Streams in
    `hold` do not advance this step (their consumer is behind); parameters are per stream.
    """

    def add(self, prompt: str, parameters: Mapping[str, Any]) -> Any: ...

    def step(self, hold: Collection[Any] = ()) -> Sequence[tuple[Any, StreamStep | Exception]]: ...

    def cancel(self, handle: Any) -> None: ...

    def close(self) -> None: ...


class Model(abc.ABC):
    """A loaded model. `tasks` lists what it serves; `predict` answers a batch for one task."""

    tasks: tuple[str, ...] = ()
    # Shown in responses and /api/tasks when a task is served by an approximation of another model.
    approximations: Mapping[str, str] = {}
    # Longest input the model takes, in tokens; > 0 prices its text inputs for the server's token budget
    # (input_tokens). A model serving several tasks may instead override input_tokens per task.
    max_input_tokens: int = 0

    @abc.abstractmethod
    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        """One result per input, in order. Raise InputError for inputs the model cannot take."""

    def input_tokens(self, task: str, item: Any) -> int:
        """What one input costs in tokens, for the server's token budget (`max_batch_tokens`); 0: unknown.

        An estimate from the text's length, because it runs on the event loop when the request is queued:
        tokenizing there would stall every other request, and tokenizing in a thread first would cost a hop per
        request (TEI tokenizes first because it has cores to spare). Texts are cut at `max_input_tokens`."""
        if self.max_input_tokens <= 0:
            return 0
        return estimate_tokens(item, self.max_input_tokens)

    def progress(self) -> Mapping[str, Any] | None:
        """How far the call running now is (e.g. {"step": 3, "total_steps": 20}), for /status; None: idle or
        unknown. Called from another thread."""
        return None

    def memory_bytes(self) -> int:
        """Resident size, used by the server's memory-bounded LRU. 0 means unknown (counted as small)."""
        return 0

    def close(self) -> None:
        """Free what the model holds; called when the server unloads it."""
        return None


class TextGenerator(Model):
    """A model that generates text: the TGI and OpenAI protocols drive these."""

    # Parameters the runtime honours; the server answers others with the `model_kwargs` 400 clients expect.
    supported_parameters: frozenset[str] = frozenset()

    @abc.abstractmethod
    def generate(self, prompt: str, parameters: Mapping[str, Any]) -> Generation: ...

    @abc.abstractmethod
    def stream(self, prompt: str, parameters: Mapping[str, Any]) -> Iterator[StreamStep]: ...

    def batched(self, max_streams: int) -> StreamBatch | None:
        """Concurrent streams decoded together, at most `max_streams` at once; None: one stream at a time."""
        return None

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """Render OpenAI-style messages with the model's chat template."""
        raise InputError("This model has no chat template.")

    def count_tokens(self, text: str) -> int:
        return 0

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        return [{"generated_text": self.generate(str(i), parameters).text} for i in inputs]


def estimate_tokens(item: Any, limit: int = 0) -> int:
    """Tokens of the text in `item` (a str, or the strs of a list or dict), from its length: ~4 characters per
    token for ASCII (English WordPiece and BPE vocabularies average 4-5), one per character otherwise (CJK
    scripts run close to that); plus 2 for the special tokens. Each text counts at most `limit` (0: no limit),
    where the model cuts it."""
    if isinstance(item, str):
        n = (len(item) // 4 if item.isascii() else len(item)) + 2
        return min(n, limit) if limit > 0 else n
    if isinstance(item, Mapping):
        item = list(item.values())
    if isinstance(item, (list, tuple)):
        return sum(estimate_tokens(v, limit) for v in item)
    return 0


class Backend(abc.ABC):
    """A model runtime (transformers, llama.cpp, ONNX Runtime...)."""

    name: str = ""

    @abc.abstractmethod
    def load(self, entry: ModelEntry, path: str) -> Model:
        """Load the model whose files are at `path` (already resolved and hash-checked by the server)."""
