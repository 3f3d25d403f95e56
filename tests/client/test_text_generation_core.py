import json

import pytest

from inferd import errors
from inferd.client._text_generation import (
    DEFAULT_PARAMETERS,
    Details,
    FinishReason,
    InputToken,
    StreamDetails,
    TextGenerationParameterError,
    TextGenerationResponse,
    TextGenerationStreamResponse,
    Token,
    build_payload,
    error_from_body,
    parse_model_kwargs_error,
    parse_response,
    parse_stream_event,
)

V021_PAYLOAD = (
    '{"inputs": "test", "parameters": {"do_sample": false, "max_new_tokens": 1, "repetition_penalty": null, '
    '"return_full_text": false, "stop": [], "seed": null, "temperature": null, "top_k": null, "top_p": null, '
    '"truncate": null, "typical_p": null, "best_of": null, "watermark": false, "details": true, '
    '"decoder_input_details": false}, "stream": false}'
)


def test_payload_is_v021_byte_for_byte():
    payload, dropped = build_payload(
        "test", stream=False, parameters={"max_new_tokens": 1, "details": True}, unsupported=set()
    )
    assert json.dumps(payload) == V021_PAYLOAD
    assert dropped == []


def test_defaults_and_stop_sequences():
    payload, _ = build_payload("hi", stream=True, parameters={}, unsupported=set())
    assert payload["parameters"] == DEFAULT_PARAMETERS and payload["stream"] is True
    payload, _ = build_payload("hi", stream=False, parameters={"stop_sequences": ["\n"]}, unsupported=set())
    assert payload["parameters"]["stop"] == ["\n"] and "stop_sequences" not in payload["parameters"]
    payload, _ = build_payload("hi", stream=False, parameters={"stop": None}, unsupported=set())
    assert payload["parameters"]["stop"] == []
    assert DEFAULT_PARAMETERS["stop"] == []  # not mutated through a payload


def test_newer_parameters_only_when_given():
    payload, _ = build_payload(
        "hi", stream=False, parameters={"top_n_tokens": None, "grammar": None}, unsupported=set()
    )
    assert "top_n_tokens" not in payload["parameters"] and "grammar" not in payload["parameters"]
    grammar = {"type": "regex", "value": "[0-9]+"}
    payload, _ = build_payload(
        "hi",
        stream=False,
        parameters={"top_n_tokens": 3, "grammar": grammar, "adapter_id": "a"},
        unsupported=set(),
    )
    assert list(payload["parameters"])[-3:] == ["top_n_tokens", "grammar", "adapter_id"]


def test_non_tgi_drops_and_lists_in_v021_order():
    payload, dropped = build_payload(
        "0 1 2",
        stream=False,
        parameters={"max_new_tokens": 10},
        unsupported={"best_of", "decoder_input_details", "details", "stop", "watermark"},
    )
    assert dropped == ["watermark", "stop", "details", "decoder_input_details"]  # best_of was None
    assert list(payload["parameters"]) == [
        "do_sample",
        "max_new_tokens",
        "repetition_penalty",
        "return_full_text",
        "seed",
        "temperature",
        "top_k",
        "top_p",
        "truncate",
        "typical_p",
    ]


def test_decoder_input_details_without_details_warns_and_is_forced_off():
    with pytest.warns(UserWarning, match="decoder_input_details"):
        payload, _ = build_payload(
            "x", stream=False, parameters={"decoder_input_details": True}, unsupported=set()
        )
    assert payload["parameters"]["decoder_input_details"] is False


@pytest.mark.parametrize(
    "prompt, params, stream, bad",
    [
        ("", {}, False, "inputs"),
        ("x", {"best_of": 0}, False, "best_of"),
        ("x", {"best_of": 2, "seed": 1, "do_sample": True}, False, "best_of"),
        ("x", {"best_of": 2}, False, "best_of"),
        ("x", {"best_of": 2, "do_sample": True}, True, "best_of"),
        ("x", {"repetition_penalty": 0}, False, "repetition_penalty"),
        ("x", {"seed": -1}, False, "seed"),
        ("x", {"temperature": 0}, False, "temperature"),
        ("x", {"temperature": "hot"}, False, "temperature"),
        ("x", {"top_k": 0}, False, "top_k"),
        ("x", {"top_p": 0}, False, "top_p"),
        ("x", {"top_p": 1.0}, False, "top_p"),
        ("x", {"truncate": 0}, False, "truncate"),
        ("x", {"typical_p": 0}, False, "typical_p"),
        ("x", {"typical_p": 1}, False, "typical_p"),
    ],
)
def test_validation_matrix(prompt, params, stream, bad):
    with pytest.raises(TextGenerationParameterError, match=f"`{bad}`") as info:
        build_payload(prompt, stream=stream, parameters=params, unsupported=set())
    assert info.value.parameter == bad
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "params",
    [
        {"best_of": 1, "seed": 3},
        {"best_of": 2, "temperature": 0.5},
        {"best_of": 2, "top_k": 5},
        {"seed": 0, "top_p": 0.9, "typical_p": 0.5, "truncate": 10, "repetition_penalty": 1.1},
    ],
)
def test_valid_parameters(params):
    payload, dropped = build_payload("x", stream=False, parameters=params, unsupported=set())
    # Accepted and sent unchanged, each in its place among the defaults; nothing dropped for a TGI server.
    assert payload["inputs"] == "x" and payload["stream"] is False and dropped == []
    assert payload["parameters"] == {**DEFAULT_PARAMETERS, **params}
    # text_generation's own client (the reference's model) accepts the same values.
    text_generation_types = pytest.importorskip("text_generation.types")
    text_generation_types.Parameters(**params)


REAL_400 = (
    "The following `model_kwargs` are not used by the model: ['watermark', 'stop', 'details', "
    "'decoder_input_details'] (note: typos in the generate arguments will also show up in this list)"
)


def test_model_kwargs_error():
    assert parse_model_kwargs_error(REAL_400) == ["watermark", "stop", "details", "decoder_input_details"]
    assert parse_model_kwargs_error("There was an inference error: " + REAL_400)[0] == "watermark"
    assert parse_model_kwargs_error("The following `model_kwargs` are not used by the model: ['x']") == ["x"]
    assert parse_model_kwargs_error("Input validation error: `temperature` must be strictly positive") is None


BEST_OF_BODY = [
    {
        "generated_text": "5",
        "details": {
            "finish_reason": "length",
            "generated_tokens": 1,
            "seed": 2835381823020158940,
            "prefill": [{"id": 0, "text": "<pad>", "logprob": None}],
            "tokens": [{"id": 305, "text": " 5", "logprob": -6.0976562, "special": False}],
            "best_of_sequences": [
                {
                    "generated_text": "10-",
                    "finish_reason": "length",
                    "generated_tokens": 1,
                    "seed": 1621834340256795699,
                    "prefill": [{"id": 0, "text": "<pad>", "logprob": None}],
                    "tokens": [{"id": 9445, "text": " 10-", "logprob": -10.6875, "special": False}],
                }
            ],
        },
    }
]


def test_parse_response():
    assert parse_response([{"generated_text": " 3 4"}], details=False) == " 3 4"
    assert parse_response({"generated_text": "a"}, details=False) == "a"
    out = parse_response(BEST_OF_BODY, details=True)
    assert isinstance(out, TextGenerationResponse)
    assert out.details.prefill[0] == InputToken(0, "<pad>", None)
    assert out.details.tokens[0] == Token(305, " 5", -6.0976562, False)
    assert out.details.finish_reason is FinishReason.Length and out.details.finish_reason == "length"
    assert out.details.best_of_sequences[0].seed == 1621834340256795699
    assert out.details.top_tokens is None


def test_parse_response_tolerates_new_and_missing_fields():
    body = {
        "generated_text": "x",
        "details": {"finish_reason": "tool_call", "tokens": [], "new": 1},
        "extra": 2,
    }
    out = parse_response(body, details=True)
    assert out.details == Details(finish_reason="tool_call", generated_tokens=None)
    assert parse_response({"generated_text": "x"}, details=True).details is None


def test_stream_event_with_and_without_index():
    event = '{"index":1,"token":{"id":3,"text":" ","logprob":-2.0,"special":false},"generated_text":null,"details":null}'
    assert parse_stream_event(event, details=False) == " "
    out = parse_stream_event(event, details=True)
    assert out == TextGenerationStreamResponse(token=Token(3, " ", -2.0, False), index=1)
    no_index = (
        '{"token":{"id":3,"text":" ","logprob":-2.0,"special":false},"generated_text":null,"details":null}'
    )
    assert parse_stream_event(no_index, details=True).index is None


def test_final_stream_event_with_input_length_and_unknown_fields():
    event = json.dumps(
        {
            "index": 5,
            "token": {"id": 2, "text": "</s>", "logprob": -0.1, "special": True},
            "top_tokens": [{"id": 2, "text": "</s>", "logprob": -0.1, "special": True}],
            "generated_text": "Hello",
            "details": {"finish_reason": "eos_token", "generated_tokens": 5, "seed": None, "input_length": 7},
            "something_new": {"a": 1},
        }
    )
    out = parse_stream_event(event, details=True)
    assert out.details == StreamDetails(FinishReason.EndOfSequenceToken, 5, None, 7)
    assert out.generated_text == "Hello" and out.top_tokens[0].special is True


def test_done_ends_the_stream():
    assert parse_stream_event("[DONE]", details=False) is None


@pytest.mark.parametrize(
    "error_type, cls",
    [
        ("generation", errors.GenerationError),
        ("validation", errors.ValidationError),
        ("overloaded", errors.OverloadedError),
        ("incomplete_generation", errors.IncompleteGenerationError),
        ("something_else", errors.UnknownError),
        (None, errors.UnknownError),
    ],
)
def test_error_events_raise_typed_errors(error_type, cls):
    body = {"error": "boom", "error_type": error_type} if error_type else {"error": "boom"}
    with pytest.raises(cls, match="boom") as info:
        parse_stream_event(json.dumps(body), details=False)
    assert isinstance(info.value, errors.HfHubHTTPError)
    assert info.value.server_message == "boom" and info.value.error_type == error_type


def test_error_from_body_with_status():
    err = error_from_body(422, {"error": "Input validation error", "error_type": "validation"}, "req-1")
    assert type(err) is errors.ValidationError and err.status_code == 422 and err.request_id == "req-1"
    assert type(error_from_body(400, {"error": ["a", "b"]})) is errors.BadRequestError
    assert error_from_body(400, {"error": ["a", "b"]}).message == "a\nb"
    openai = {"error": {"message": "bad", "type": "invalid_request_error", "code": 400}}
    assert type(error_from_body(400, openai)) is errors.BadRequestError
    assert type(error_from_body(None, openai)) is errors.BadRequestError


def test_malformed_events_raise_value_error():
    with pytest.raises(ValueError, match="JSON"):
        parse_stream_event("not json", details=False)
    with pytest.raises(ValueError, match="token"):
        parse_stream_event("{}", details=False)
