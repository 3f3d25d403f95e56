"""What a hostile or careless client sends is refused with a 4xx naming the limit, never a 500 (issue 10).

Rows: 1 (metrics labels of unknown ids), 2/3/9/10 (media bombs through the routes), 7 (NUL), 8 (deep JSON),
12 (a client gone mid-body), 15 (inputs per request, object reprs in messages). Hostile media are crafted in
memory (test_media_limits.py).
"""

from __future__ import annotations

import base64
import json
import logging
import math

import numpy as np
import pytest
from appkit import make_app, running
from test_media_limits import png, png_header, wav_header

from inferd.server.settings import ServerSettings

IMG = "/models/toy/vision/pipeline/image-classification"
ASR = "/models/toy/audio/pipeline/automatic-speech-recognition"


async def test_unknown_model_ids_share_one_metrics_label(tmp_path):
    """Row 1: each made-up id in a URL was a new /metrics series forever, even answered 401."""
    key = {"Authorization": "Bearer K"}
    async with running(tmp_path, ServerSettings(api_key="K")) as client:
        sizes = []
        for _ in range(2):
            for i in range(100):
                r = await client.post(f"/models/x{i}-{'a' * 200}", json={"inputs": "hi"})
                assert r.status_code == 401
            sizes.append(len((await client.get("/metrics", headers=key)).content))
        for i in range(20):  # with the key: 404, and /pipeline/<made-up task> too
            r = await client.post(
                f"/pipeline/nope{i}/toy/text", json={"inputs": "hi"}, headers={"Authorization": "Bearer K"}
            )
            assert r.status_code == 404
        r = await client.post(
            "/models/toy/text", json={"inputs": "hi"}, headers={"Authorization": "Bearer K"}
        )
        assert r.status_code == 200
        text = (await client.get("/metrics", headers=key)).text
    assert "x0-" not in text and "nope0" not in text
    assert 'status="401"' not in text  # refused before any route: no series at all
    assert 'inferd_request_total{model="toy/text",status="404",task="unknown"} 20.0' in text
    assert 'model="toy/text"' in text  # a model the server has keeps its own label
    assert abs(sizes[1] - sizes[0]) < 100  # the same series whatever the number of ids


@pytest.mark.parametrize(
    ("data", "status", "flag"),
    [
        (png_header(20000, 1), 413, "--max-image-side"),
        (png_header(10000, 1), 422, "--max-image-aspect"),
        (png_header(1, 1_000_000), 413, "--max-image-side"),
        (png_header(20000, 20000), 413, "--max-image-pixels"),
    ],
    ids=["20000x1", "10000x1", "1x1000000", "20000x20000"],
)
async def test_image_bombs_are_refused_before_the_model(tmp_path, data, status, flag):
    async with running(tmp_path) as client:
        for send in (
            {"content": data, "headers": {"content-type": "image/png"}},
            {"json": {"inputs": base64.b64encode(data).decode()}},
        ):
            r = await client.post(IMG, **send)
            assert r.status_code == status, r.text
            assert flag in r.json()["error"]
        r = await client.post(
            "/models/toy/vision/pipeline/visual-question-answering",
            json={"image": base64.b64encode(data).decode(), "question": "what?"},
        )
        assert r.status_code == status and flag in r.json()["error"]
        assert client.backend.models["toy/vision"].batches == []


@pytest.mark.parametrize("rate", [1, 2**31 - 1])
async def test_audio_with_an_absurd_sample_rate_is_a_422(tmp_path, rate):
    async with running(tmp_path) as client:
        r = await client.post(ASR, content=wav_header(rate, 16000), headers={"content-type": "audio/wav"})
        assert r.status_code == 422 and f"{rate} Hz" in r.json()["error"]
        assert client.backend.models["toy/audio"].batches == []


async def test_media_limits_come_from_the_server_settings(tmp_path):
    settings = ServerSettings(max_image_side=64, max_audio_seconds=0.1)
    async with running(tmp_path, settings) as client:
        r = await client.post(IMG, content=png(65, 10), headers={"content-type": "image/png"})
        assert r.status_code == 413 and "64 pixels a side" in r.json()["error"]
        r = await client.post(ASR, content=wav_header(16000, 3200), headers={"content-type": "audio/wav"})
        assert r.status_code == 413 and "--max-audio-seconds" in r.json()["error"]
        r = await client.post(IMG, content=png(64, 10), headers={"content-type": "image/png"})
        assert r.status_code == 200


async def test_a_nul_character_in_text_is_a_400_on_every_kind_of_body(tmp_path):
    """Row 7: piper's TTS answered 500 (`embedded null character`)."""
    async with running(tmp_path) as client:
        r = await client.post("/models/toy/tts", json={"inputs": "a\u0000b"})
        assert r.status_code == 400 and "`inputs`" in r.json()["error"] and "NUL" in r.json()["error"]
        r = await client.post("/models/toy/text", json={"inputs": ["fine", "a\u0000b"]})
        assert r.status_code == 400 and "`inputs[1]`" in r.json()["error"]
        r = await client.post(
            "/models/toy/text", content="a\u0000b".encode(), headers={"content-type": "text/plain"}
        )
        assert r.status_code == 400 and "NUL" in r.json()["error"]
        r = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "\u0000"}]}
        )
        assert r.status_code == 400 and "messages[0].content" in r.json()["error"]["message"]
        assert client.backend.models["toy/tts"].batches == []


def nested(depth: int, inside: str = "") -> str:
    """JSON text of `depth` objects one inside the other, `inside` in the innermost (json.dumps cannot: it
    recurses)."""
    return '{"a":' * (depth - 1) + "{" + inside + "}" + "}" * (depth - 1)


async def test_json_nested_deeper_than_64_is_a_400(tmp_path):
    """Row 8: 1,000 levels of generate_parameters made the engine's json.dumps raise RecursionError (500)."""
    summarize = "/models/toy/text/pipeline/summarization"

    def generate_parameters(depth: int) -> str:
        return '{"inputs": "x", "parameters": {"generate_parameters": ' + nested(depth) + "}}"

    async with running(tmp_path) as client:
        for url, body in [
            (summarize, generate_parameters(1000)),
            (summarize, generate_parameters(63)),  # 65 levels with the body and `parameters`
            ("/v1/embeddings", '{"input": "x", "user": ' + nested(500) + "}"),
            (ASR, '{"inputs": ' + nested(100) + "}"),
        ]:
            r = await client.post(url, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text
            assert "64 levels deep" in r.text
        r = await client.post(
            summarize, content=generate_parameters(60), headers={"content-type": "application/json"}
        )
        assert r.status_code == 200, r.text


ROUTES = [
    # (url, body with 4 inputs, where the OpenAI envelope puts the message)
    ("/models/toy/text", {"inputs": ["a", "b", "c", "d"]}),
    ("/models/toy/minilm/pipeline/feature-extraction", {"inputs": ["a", "b", "c", "d"]}),
    (
        "/models/toy/minilm/pipeline/sentence-similarity",
        {"inputs": {"source_sentence": "a", "sentences": ["a", "b", "c", "d"]}},
    ),
    ("/models/toy/text/pipeline/tabular-classification", {"table": {"x": ["1", "2", "3", "4"]}}),
    ("/models/toy/minilm/embed", {"inputs": ["a", "b", "c", "d"]}),
    (
        "/models/toy/minilm/similarity",
        {"inputs": {"source_sentence": "a", "sentences": ["a", "b", "c", "d"]}},
    ),
    ("/models/toy/minilm/rerank", {"query": "a", "texts": ["a", "b", "c", "d"]}),
    ("/models/toy/text/predict", {"inputs": [["a"], ["b"], ["c"], ["d"]]}),
    ("/models/toy/minilm/v1/embeddings", {"input": ["a", "b", "c", "d"]}),
]


async def test_inputs_per_request_are_bounded_the_same_on_every_route_and_in_info(tmp_path):
    """Row 15b: /embed took 100k texts while /info said 32 and /v1/embeddings capped at 2048."""
    async with running(tmp_path, ServerSettings(max_client_batch_size=3)) as client:
        assert (await client.get("/info")).json()["max_client_batch_size"] == 3
        for url, body in ROUTES:
            r = await client.post(url, json=body)
            assert "--max-client-batch-size" in r.text and "4 items" in r.text, url
            if "/v1/" in url:  # OpenAI's own answer to too many inputs: 400 in its envelope
                assert r.status_code == 400 and r.json()["error"]["param"] == "input", (url, r.text)
            else:  # TEI's
                assert r.status_code == 413 and r.json()["error_type"] == "payload_too_large", (url, r.text)
    async with running(tmp_path) as client:
        assert (await client.get("/info")).json()["max_client_batch_size"] == 2048
        for url, body in ROUTES:
            assert (await client.post(url, json=body)).status_code == 200, url


async def test_candidate_labels_are_bounded_on_the_wire(tmp_path):
    """Each label is scored against each input: 65 of them is a 400 naming the limit, as a list or a string."""
    url = "/pipeline/zero-shot-classification/toy/text"
    async with running(tmp_path) as client:
        for labels in (["x"] * 65, ",".join(["x"] * 65)):
            r = await client.post(url, json={"inputs": "hi", "parameters": {"candidate_labels": labels}})
            assert r.status_code == 400 and r.json()["error_type"] == "bad_request", r.text
            assert "at most 64" in r.json()["error"]
        r = await client.post(url, json={"inputs": "hi", "parameters": {"candidate_labels": ["x"] * 64}})
        assert r.status_code == 200, r.text


async def test_messages_never_hold_object_reprs(tmp_path):
    """Row 15c: Pillow and libsndfile name our BytesIO (`<_io.BytesIO object at 0x...>`) in their errors."""
    async with running(tmp_path) as client:
        for url, data, ctype in [
            (IMG, b"GIF89a not really", "image/gif"),
            (IMG, b"\x89PNG\r\n\x1a\nbroken", "image/png"),
            (ASR, b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk", "audio/wav"),
            (ASR, b"fLaC\x00\x00\x00\x22broken", "audio/flac"),
        ]:
            r = await client.post(url, content=data, headers={"content-type": ctype})
            assert r.status_code == 400, r.text
            assert " at 0x" not in r.text and "BytesIO" not in r.text, r.text


async def test_a_client_gone_mid_body_is_499_not_an_internal_error(tmp_path, caplog):
    """Row 12: it was logged as `internal error` with a traceback and counted as a 500."""
    app, engine, _ = make_app(tmp_path)
    await engine.start()
    messages = [
        {"type": "http.request", "body": b'{"inputs": "I lo', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/models/toy/text",
        "raw_path": b"/models/toy/text",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
        "client": ("127.0.0.1", 1),
        "server": ("inferd", 80),
    }
    try:
        with caplog.at_level(logging.WARNING):
            await app(scope, receive, send)
        exposition = app.state.inferd.metrics.exposition().decode()
    finally:
        await engine.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert 'status="499"' in exposition and 'status="500"' not in exposition


async def test_nan_in_answers_is_a_500_model_fault_not_nulls(tmp_path, caplog):
    """Row 15a, at the engine: a model answering NaN gave 200 `[null, ...]`."""
    async with running(tmp_path) as client:
        toy = client.backend.models["toy/minilm"]
        honest = toy.predict

        def broken(task, inputs, parameters):
            return [
                np.full(4, np.nan, np.float32) if x == "nan" else r
                for x, r in zip(inputs, honest(task, inputs, parameters), strict=True)
            ]

        toy.predict = broken
        with caplog.at_level(logging.ERROR):
            r = await client.post("/models/toy/minilm/embed", json={"inputs": ["fine", "nan"]})
        assert r.status_code == 500 and r.json()["error_type"] == "internal"
        assert "null" not in r.text
        assert "answered NaN or infinity" in caplog.text and "toy/minilm" in caplog.text
        r = await client.post("/models/toy/minilm/embed", json={"inputs": ["fine"]})
        assert r.status_code == 200 and r.json() == [[4.0, 5.0, 6.0, 7.0]]


async def test_generated_logprobs_reach_json_as_numbers_or_as_a_model_fault(tmp_path, caplog):
    """orjson writes NaN and infinity as null: a logprob of -inf (a probability that underflowed) is sent as
    OpenAI's floor, -9999.0; NaN is a model fault (500, or an error event once a stream has started)."""
    chat = {
        "model": "toy/llm",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
        "logprobs": True,
    }
    details = {"inputs": "hi", "parameters": {"max_new_tokens": 2, "details": True}}
    async with running(tmp_path) as client:
        llm = client.backend.models["toy/llm"]
        llm.logprobs = [-math.inf]
        r = await client.post("/models/toy/llm/generate", json=details)
        assert [t["logprob"] for t in r.json()["details"]["tokens"]] == [-9999.0, -0.5]
        r = await client.post("/v1/chat/completions", json=chat)
        assert [t["logprob"] for t in r.json()["choices"][0]["logprobs"]["content"]] == [-9999.0, -0.5]
        r = await client.post("/models/toy/llm/generate_stream", json=details)
        events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
        assert [e["token"]["logprob"] for e in events] == [-9999.0, -0.5]

        llm.logprobs = [math.nan]
        with caplog.at_level(logging.ERROR):
            r = await client.post("/models/toy/llm/generate", json=details)
        assert r.status_code == 500 and r.json()["error_type"] == "internal", r.text
        assert "answered NaN or infinity" in caplog.text
        r = await client.post("/v1/chat/completions", json=chat)
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error", r.text
        llm.logprobs = [-0.5, math.inf]  # the stream has started: an error event ends it
        r = await client.post("/models/toy/llm/generate_stream", json=details)
        events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
        assert [e["token"]["logprob"] for e in events[:-1]] == [-0.5], r.text  # never a null logprob
        assert events[-1]["error_type"] == "internal", r.text
