import copy
import json
import pickle

import pytest

from inferd import errors
from inferd.client._chat import (
    CHAT_PARAMETERS,
    ChatCompletionOutput,
    ChatCompletionOutputMessage,
    ChatCompletionStreamOutput,
    build_chat_payload,
    chat_url,
    parse_chat_response,
    parse_chat_stream_event,
)

EP = "https://api-inference.huggingface.co"
IE = "https://abc.us-east-1.aws.endpoints.huggingface.cloud"


@pytest.mark.parametrize(
    "model, base_url, expected",
    [
        (
            "HuggingFaceH4/zephyr-7b-beta",
            None,
            f"{EP}/models/HuggingFaceH4/zephyr-7b-beta/v1/chat/completions",
        ),
        (IE, None, f"{IE}/v1/chat/completions"),
        (f"{IE}/", None, f"{IE}/v1/chat/completions"),
        (f"{IE}/v1", None, f"{IE}/v1/chat/completions"),
        (f"{IE}/v1/", None, f"{IE}/v1/chat/completions"),
        (f"{IE}/v1/chat/completions", None, f"{IE}/v1/chat/completions"),
        (f"{IE}/chat/completions", None, f"{IE}/chat/completions"),
        ("http://localhost:8080/v1", None, "http://localhost:8080/v1/chat/completions"),
        (f"{IE}/deploy/x", None, f"{IE}/deploy/x/v1/chat/completions"),
        (f"{IE}?api-version=1", None, f"{IE}/v1/chat/completions?api-version=1"),
        (f"{IE}/?api-version=1", None, f"{IE}/v1/chat/completions?api-version=1"),
        (f"{IE}/v1?api-version=1", None, f"{IE}/v1/chat/completions?api-version=1"),
        (f"{IE}/chat/completions?api-version=1", None, f"{IE}/chat/completions?api-version=1"),
        (f"{IE}/v1/chat/completions?api-version=1", None, f"{IE}/v1/chat/completions?api-version=1"),
        # base_url wins; the model then travels only in the body.
        ("meta-llama/Llama-3.1-8B", "http://localhost:8082/v1/", "http://localhost:8082/v1/chat/completions"),
        (None, "http://localhost:8082", "http://localhost:8082/v1/chat/completions"),
        ("http://other:1/v1", "http://localhost:8082/v1", "http://localhost:8082/v1/chat/completions"),
    ],
)
def test_chat_url(model, base_url, expected):
    assert chat_url(model, base_url, EP) == expected


def test_chat_url_needs_a_target():
    with pytest.raises(ValueError):
        chat_url(None, None, EP)
    assert chat_url("m", None, EP + "/") == f"{EP}/models/m/v1/chat/completions"


def test_payload_model_first_nulls_dropped_extra_body_last():
    messages = [{"role": "user", "content": "hi"}]
    payload = build_chat_payload(
        messages,
        model=None,
        parameters={"max_tokens": 5, "temperature": None, "stream": False},
        extra_body={"top_k": 3},
    )
    assert payload == {"model": "dummy", "messages": messages, "max_tokens": 5, "stream": False, "top_k": 3}
    assert list(payload)[:2] == ["model", "messages"]
    assert build_chat_payload(messages, model="m", parameters={}, extra_body=None)["model"] == "m"
    assert "tool_prompt" in CHAT_PARAMETERS and len(CHAT_PARAMETERS) == 16


OPENAI_RESPONSE = {
    "id": "chatcmpl-9x",
    "object": "chat.completion",
    "created": 1718000000,
    "model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
                "refusal": None,
            },
            "logprobs": {
                "content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 82,
        "completion_tokens": 17,
        "total_tokens": 99,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
}


def test_parse_realistic_openai_response():
    out = parse_chat_response(OPENAI_RESPONSE)
    assert isinstance(out, ChatCompletionOutput) and isinstance(out, dict)
    call = out.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and call["function"]["arguments"] == '{"city": "Paris"}'
    assert isinstance(out["choices"][0]["message"], ChatCompletionOutputMessage)
    assert out.choices[0].logprobs.content[0].token == "Hi"
    assert out.usage.total_tokens == 99 and out.usage.prompt_tokens_details == {"cached_tokens": 0}
    assert out.object == "chat.completion" and out.choices[0].message.refusal is None
    assert out.choices[0].message.reasoning is None  # declared but absent -> None
    with pytest.raises(AttributeError):
        _ = out.not_a_field
    # Still plain data: JSON, copy and pickle keep the values.
    assert json.loads(json.dumps(out))["choices"][0]["finish_reason"] == "tool_calls"
    assert pickle.loads(pickle.dumps(out)) == out and copy.deepcopy(out) == out


def test_parse_response_accepts_json_text_and_raises_error_bodies():
    assert parse_chat_response(json.dumps(OPENAI_RESPONSE)).id == "chatcmpl-9x"
    with pytest.raises(errors.ValidationError):
        parse_chat_response({"error": "Template error", "error_type": "validation"})


def test_stream_chunks():
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        },
        {**base, "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
        {
            **base,
            "choices": [{"index": 0, "delta": {"content": "lo"}, "logprobs": None, "finish_reason": None}],
        },
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
    ]
    outs = [parse_chat_stream_event(json.dumps(c)) for c in chunks]
    assert all(isinstance(o, ChatCompletionStreamOutput) for o in outs)
    assert outs[0].choices[0].delta.role == "assistant" and outs[0].usage is None
    assert "".join(o.choices[0].delta.content or "" for o in outs[:4]) == "Hello"
    assert outs[1].choices[0].delta.role is None
    assert outs[3].choices[0].finish_reason == "stop"
    assert outs[4].choices == [] and outs[4].usage.total_tokens == 5
    assert parse_chat_stream_event("[DONE]") is None


def test_stream_tool_call_delta():
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                },
            }
        ]
    }
    out = parse_chat_stream_event(json.dumps(chunk))
    assert out.choices[0].delta.tool_calls[0].function.name == "f"


@pytest.mark.parametrize(
    "body, cls",
    [
        ({"error": "Input validation error", "error_type": "validation"}, errors.ValidationError),
        ({"error": "CUDA OOM", "error_type": "generation"}, errors.GenerationError),
        ({"error": "boom"}, errors.UnknownError),
        ({"error": {"message": "boom", "type": "server_error"}}, errors.UnknownError),
        ({"error": {"message": "boom", "type": "overloaded"}}, errors.OverloadedError),
    ],
)
def test_stream_error_events(body, cls):
    with pytest.raises(cls, match="boom|validation|OOM"):
        parse_chat_stream_event(json.dumps(body))
