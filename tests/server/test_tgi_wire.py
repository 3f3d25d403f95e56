import json

import pytest

from inferd import errors
from inferd.backends.base import GeneratedToken, Generation, StreamStep
from inferd.client._text_generation import (
    FinishReason,
    StreamDetails,
    Token,
    parse_response,
    parse_stream_event,
)
from inferd.server.protocols import tgi_wire
from inferd.sse import iter_events

TOKENS = [
    GeneratedToken(1, "Hello", -0.5),
    GeneratedToken(2, " world", -0.25),
    GeneratedToken(3, "</s>", -0.01, special=True),
]
GEN = Generation(text="Hello world", tokens=TOKENS, finish_reason="eos_token", prompt_tokens=4, seed=None)


def wire(body):
    return json.loads(json.dumps(body))


def test_generate_response_round_trips_through_the_client():
    body = wire([tgi_wire.generate_response(GEN, details=True, seed=7)])
    out = parse_response(body, details=True)
    assert out.generated_text == "Hello world"
    assert out.details.finish_reason is FinishReason.EndOfSequenceToken
    assert out.details.generated_tokens == 3 and out.details.seed == 7 and out.details.prefill == []
    assert out.details.tokens[2] == Token(3, "</s>", -0.01, True)
    assert out.details.best_of_sequences is None
    assert "best_of_sequences" not in body[0]["details"] and "top_tokens" not in body[0]["details"]


def test_generate_response_without_details_and_full_text():
    body = tgi_wire.generate_response(GEN, prompt="Say: ", return_full_text=True)
    assert body == {"generated_text": "Say: Hello world"}
    assert parse_response(wire(body), details=False) == "Say: Hello world"


def test_best_of_sequences():
    other = Generation(text="Hi", tokens=TOKENS[:1], finish_reason="length", seed=3)
    body = tgi_wire.generate_response(GEN, details=True, best_of=[other])
    out = parse_response(wire(body), details=True)
    (seq,) = out.details.best_of_sequences
    assert (seq.generated_text, seq.finish_reason, seq.generated_tokens, seq.seed) == ("Hi", "length", 1, 3)


def stream(encoder, steps, **final):
    raw = b"".join(tgi_wire.sse(encoder.encode(s, **(final if s.finish_reason else {}))) for s in steps)
    return [parse_stream_event(e.data, details=True) for e in iter_events(raw.splitlines(keepends=True))]


STEPS = [StreamStep(TOKENS[0]), StreamStep(TOKENS[1]), StreamStep(TOKENS[2], finish_reason="eos_token")]


def test_stream_round_trips_with_details_and_input_length():
    encoder = tgi_wire.StreamEncoder(prompt="Say: ", return_full_text=True, details=True, seed=5)
    events = stream(encoder, STEPS, input_length=4)
    assert [e.index for e in events] == [1, 2, 3]
    assert [e.token.text for e in events] == ["Hello", " world", "</s>"]
    assert [e.generated_text for e in events] == [None, None, "Say: Hello world"]
    assert events[-1].details == StreamDetails(FinishReason.EndOfSequenceToken, 3, 5, 4)
    assert all(e.details is None for e in events[:-1])


def test_stream_without_details_has_text_but_no_details():
    events = stream(tgi_wire.StreamEncoder(), STEPS)
    assert events[-1].generated_text == "Hello world" and events[-1].details is None
    encoder = tgi_wire.StreamEncoder()
    encoder.encode(STEPS[-1])
    with pytest.raises(RuntimeError):
        encoder.encode(STEPS[-1])


def test_stream_event_shape_is_tgi():
    event = tgi_wire.stream_response(1, STEPS[0])
    assert list(event) == ["index", "token", "generated_text", "details"]
    assert tgi_wire.sse(event).startswith(b'data: {"index":1,"token":{"id":1,')


@pytest.mark.parametrize("error_type", ["generation", "validation", "overloaded", "incomplete_generation"])
def test_error_event_round_trips_to_the_typed_error(error_type):
    raw = tgi_wire.sse(tgi_wire.error_event("it broke", error_type))
    (event,) = iter_events(raw.splitlines())
    with pytest.raises(errors.ERROR_TYPES[error_type], match="it broke"):
        parse_stream_event(event.data, details=False)


def test_shapes_validate_with_the_text_generation_client():
    types = pytest.importorskip("text_generation.types")
    types.Response(**wire(tgi_wire.generate_response(GEN, details=True)))
    encoder = tgi_wire.StreamEncoder(details=True, input_length=4)
    for step in STEPS:
        types.StreamResponse(**wire(encoder.encode(step)))
