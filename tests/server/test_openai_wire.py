import json

import pytest

from inferd import errors
from inferd.backends.base import GeneratedToken, Generation, StreamStep
from inferd.client._chat import (
    ChatCompletionOutput,
    ChatCompletionStreamOutput,
    parse_chat_response,
    parse_chat_stream_event,
)
from inferd.server.protocols import openai_wire
from inferd.server.protocols.openai_wire import ChatStreamEncoder, chat_completion
from inferd.sse import iter_events

TOKENS = [
    GeneratedToken(1, "Hel", -0.5),
    GeneratedToken(2, "lo", -0.25),
    GeneratedToken(3, "</s>", special=True),
]
GEN = Generation(text="Hello", tokens=TOKENS, finish_reason="eos_token", prompt_tokens=9)
STEPS = [StreamStep(TOKENS[0]), StreamStep(TOKENS[1]), StreamStep(TOKENS[2], finish_reason="eos_token")]


def test_chat_completion_round_trips_through_the_client():
    body = openai_wire.chat_completion(
        GEN, model="tiny-llm", id="chatcmpl-1", created=1700000000, logprobs=True
    )
    out = parse_chat_response(json.loads(json.dumps(body)))
    assert isinstance(out, ChatCompletionOutput)
    assert (out.id, out.object, out.created, out.model) == (
        "chatcmpl-1",
        "chat.completion",
        1700000000,
        "tiny-llm",
    )
    assert out.system_fingerprint.startswith("inferd-")
    choice = out.choices[0]
    assert (choice.index, choice.finish_reason) == (0, "stop")
    assert (choice.message.role, choice.message.content) == ("assistant", "Hello")
    assert [lp.token for lp in choice.logprobs.content] == ["Hel", "lo"]
    assert out.usage == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def test_defaults_and_several_choices():
    other = Generation(text="Hi", tokens=TOKENS[:1], finish_reason="length", prompt_tokens=9)
    body = openai_wire.chat_completion([GEN, other], model="m")
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert [c["finish_reason"] for c in body["choices"]] == ["stop", "length"]
    assert body["choices"][0]["logprobs"] is None
    assert body["usage"]["completion_tokens"] == 4


def test_finish_reasons():
    assert [
        openai_wire.finish_reason(r) for r in ("length", "eos_token", "stop_sequence", None, "tool_calls")
    ] == [
        "length",
        "stop",
        "stop",
        None,
        "tool_calls",
    ]


def chunks_on_the_wire(encoder, steps):
    raw = openai_wire.sse(encoder.start())
    for step in steps:
        raw += b"".join(openai_wire.sse(chunk) for chunk in encoder.encode(step))
    raw += openai_wire.sse(openai_wire.DONE)
    return [e.data for e in iter_events(raw.splitlines(keepends=True))]


def test_stream_round_trips_through_the_client():
    encoder = openai_wire.ChatStreamEncoder(
        model="m", id="chatcmpl-2", created=5, prompt_tokens=9, include_usage=True
    )
    events = chunks_on_the_wire(encoder, STEPS)
    assert events[-1] == "[DONE]" and parse_chat_stream_event(events[-1]) is None
    chunks = [parse_chat_stream_event(data) for data in events[:-1]]
    assert all(isinstance(c, ChatCompletionStreamOutput) for c in chunks)
    assert {(c.id, c.created, c.model, c.object) for c in chunks} == {
        ("chatcmpl-2", 5, "m", "chat.completion.chunk")
    }
    first, *content, finish, last = chunks
    assert first.choices[0].delta == {"role": "assistant", "content": ""} | {
        k: None for k in ("reasoning", "tool_call_id", "tool_calls")
    }
    assert [c.choices[0].delta.content for c in content] == ["Hel", "lo"]  # no chunk for the special EOS
    assert finish.choices[0].finish_reason == "stop" and finish.choices[0].delta.content is None
    assert last.choices == [] and last.usage.total_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_and_with_logprobs():
    encoder = openai_wire.ChatStreamEncoder(model="m", logprobs=True)
    chunks = [parse_chat_stream_event(data) for data in chunks_on_the_wire(encoder, STEPS)[:-1]]
    assert "usage" not in openai_wire.ChatStreamEncoder(model="m").start()
    assert chunks[0].usage is None and chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[1].choices[0].logprobs.content[0].logprob == -0.5
    with pytest.raises(RuntimeError):
        encoder.encode(STEPS[-1])


@pytest.mark.parametrize("error_type", ["validation", "generation", "overloaded", "model_loading"])
def test_error_round_trips_to_the_typed_error(error_type):
    raw = openai_wire.sse(openai_wire.error_body("it broke", error_type, 500))
    (event,) = iter_events(raw.splitlines())
    with pytest.raises(errors.ERROR_TYPES[error_type], match="it broke"):
        parse_chat_stream_event(event.data)


def test_shapes_validate_with_the_openai_sdk():
    types = pytest.importorskip("openai.types.chat")
    completion = openai_wire.chat_completion(GEN, model="m", logprobs=True)
    assert types.ChatCompletion.model_validate(completion).choices[0].message.content == "Hello"
    encoder = openai_wire.ChatStreamEncoder(model="m", include_usage=True, logprobs=True)
    chunks = [encoder.start(), *(c for s in STEPS for c in encoder.encode(s))]
    parsed = [types.ChatCompletionChunk.model_validate(c) for c in chunks]
    assert parsed[-1].usage.total_tokens == 3


def _steps(pieces: list[str], reason: str) -> list[StreamStep]:
    return [
        StreamStep(GeneratedToken(i, p), reason if i == len(pieces) - 1 else None)
        for i, p in enumerate(pieces)
    ]


def _streamed_text(encoder: ChatStreamEncoder, steps: list[StreamStep]) -> str:
    chunks = [c for step in steps for c in encoder.encode(step)]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_openai_leaves_the_stop_string_out_non_stream():
    gen = Generation(text="Paris.\nUser: next", finish_reason="stop_sequence")
    body = chat_completion(gen, model="m", stop=["\nUser:"])
    assert body["choices"][0]["message"]["content"] == "Paris."
    assert chat_completion(gen, model="m")["choices"][0]["message"]["content"] == gen.text


def test_openai_stream_holds_back_what_may_start_a_stop_string():
    # "\nUs" could begin "\nUser:" so it waits; then the stop string arrives and is never sent.
    encoder = ChatStreamEncoder(model="m", stop=["\nUser:"])
    assert _streamed_text(encoder, _steps(["Par", "is.", "\nUs", "er:"], "stop_sequence")) == "Paris."
    # A held-back tail that turns out not to be a stop string is sent, in order.
    encoder = ChatStreamEncoder(model="m", stop=["\nUser:"])
    assert _streamed_text(encoder, _steps(["A", "\nU", "nder", " B"], "length")) == "A\nUnder B"
    # Without stop strings every token goes out as it comes.
    encoder = ChatStreamEncoder(model="m")
    chunks = encoder.encode(StreamStep(GeneratedToken(1, "Hi")))
    assert chunks[0]["choices"][0]["delta"]["content"] == "Hi"
