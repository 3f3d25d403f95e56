"""HF Inference API routes: every task's answer shape, media in and out, task from route or payload shape."""

import base64
import io

import numpy as np
import pytest
import soundfile
from appkit import running
from PIL import Image


def png(width=4, height=3) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(out, format="PNG")
    return out.getvalue()


def wav(seconds=0.5, rate=16000, fmt="WAV") -> bytes:
    out = io.BytesIO()
    soundfile.write(out, np.zeros(int(seconds * rate), dtype=np.float32), rate, format=fmt)
    return out.getvalue()


@pytest.fixture
async def client(tmp_path):
    async with running(tmp_path) as c:
        yield c


async def test_text_tasks_answer_the_shapes_clients_parse(client):
    r = await client.post("/models/toy/text/pipeline/text-classification", json={"inputs": "I love it"})
    assert r.status_code == 200 and r.json()[0][0] == {"label": "POSITIVE", "score": 0.9}
    assert r.headers["x-compute-type"] == "cpu" and float(r.headers["x-compute-time"]) >= 0
    assert r.headers["x-compute-characters"] == "9"
    r = await client.post("/models/toy/text", json={"inputs": "I love it"})  # first task of the model
    assert isinstance(r.json()[0], list)
    r = await client.post("/models/toy/text", content=b"raw text body")  # a raw UTF-8 string
    assert r.status_code == 200 and r.json()[0][1]["label"] == "NEGATIVE"
    r = await client.post("/models/toy/text", json={"inputs": ["a", "I love"]})  # a list: one answer each
    assert len(r.json()) == 2 and r.json()[1][0]["score"] == 0.9


@pytest.mark.parametrize("labels", [["a", "b"], "a, b"])
async def test_zero_shot_is_a_list_with_labels_as_list_or_comma_string(client, labels):
    body = {"inputs": "hi", "parameters": {"candidate_labels": labels}}
    r = await client.post("/pipeline/zero-shot-classification/toy/text", json=body)
    assert r.json() == [{"label": "a", "score": 0.5}, {"label": "b", "score": 0.5}]


async def test_extra_top_level_keys_and_tabular_both_shapes(client):
    url = "/models/toy/text/pipeline/"
    qa = await client.post(url + "question-answering", json={"question": "who?", "context": "Clara"})
    assert qa.json()["answer"] == "Cla"
    qa = await client.post(
        url + "question-answering", json={"inputs": {"question": "who?", "context": "Bob"}}
    )
    assert qa.json()["answer"] == "Bob"
    tqa = await client.post(url + "table-question-answering", json={"query": "n?", "table": {"a": ["1"]}})
    assert tqa.json()["cells"] == ["1"]
    for body in ({"table": {"x": ["1", "2"]}}, {"inputs": {"data": {"x": [1, 2]}}}):
        r = await client.post(url + "tabular-classification", json=body)
        assert r.json() == ["setosa", "setosa"]
    assert (await client.post(url + "summarization", json={"inputs": "a long text"})).json() == [
        {"summary_text": "a long tex"}
    ]
    assert (await client.post(url + "translation", json={"inputs": "hi"})).json() == [
        {"translation_text": "HI"}
    ]


async def test_multi_task_model_takes_the_task_from_the_payload_shape(client):
    fe = await client.post("/models/toy/minilm", json={"inputs": "abc"})
    assert fe.json() == [3.0, 4.0, 5.0, 6.0]
    fe = await client.post("/models/toy/minilm", json={"inputs": "abc", "normalize": True})  # TEI-style
    assert fe.status_code == 200
    body = {"inputs": {"source_sentence": "abc", "sentences": ["abc", "abcd"]}}
    sim = await client.post("/models/toy/minilm", json=body)
    assert sim.json() == [1.0, 0.5]
    sim = await client.post("/pipeline/sentence-similarity/toy/minilm", json=body)
    assert sim.json() == [1.0, 0.5]


async def test_images_in_raw_base64_and_data_url(client):
    raw = await client.post("/models/toy/vision", content=png(), headers={"content-type": "image/png"})
    assert raw.json() == [{"label": "4x3", "score": 1.0}]
    assert (await client.post("/models/toy/vision", content=png())).json()[0]["label"] == "4x3"  # no type
    b64 = base64.b64encode(png(5, 5)).decode()
    r = await client.post("/models/toy/vision/pipeline/image-classification", json={"inputs": b64})
    assert r.json()[0]["label"] == "5x5"
    r = await client.post(
        "/models/toy/vision/pipeline/object-detection", json={"inputs": "data:image/png;base64," + b64}
    )
    assert r.json()[0]["box"]["xmax"] == 5
    zs = {"image": b64, "parameters": {"candidate_labels": "cat,dog"}}  # v0.21 shape
    r = await client.post("/models/toy/vision/pipeline/zero-shot-image-classification", json=zs)
    assert [x["label"] for x in r.json()] == ["cat", "dog"]
    r = await client.post(
        "/models/toy/vision/pipeline/visual-question-answering", json={"image": b64, "question": "ab"}
    )
    assert r.json()[0]["answer"] == "ba"


async def test_images_out_follow_accept_and_masks_are_base64_png(client):
    seg = await client.post("/models/toy/vision/pipeline/image-segmentation", content=png())
    mask = Image.open(io.BytesIO(base64.b64decode(seg.json()[0]["mask"])))
    assert mask.format == "PNG" and mask.size == (4, 3)
    r = await client.post("/models/toy/paint", json={"inputs": "a red square", "parameters": {"width": 32}})
    assert r.headers["content-type"] == "image/png" and Image.open(io.BytesIO(r.content)).size == (32, 8)
    assert r.headers["x-inferd-approximation"] == "draws a red rectangle"
    r = await client.post("/models/toy/paint", json={"inputs": "x"}, headers={"accept": "image/jpeg"})
    assert r.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(r.content)).format == "JPEG"
    r = await client.post("/models/toy/vision/pipeline/image-to-image", content=png())
    assert Image.open(io.BytesIO(r.content)).size == (4, 3)


async def test_audio_in_raw_or_base64_json_and_out_as_flac_or_wav(client):
    r = await client.post("/models/toy/audio", content=wav(), headers={"content-type": "audio/wav"})
    assert r.json() == {"text": "0.5 seconds at 16000"}
    body = {
        "inputs": base64.b64encode(wav(1.0, 8000, "FLAC")).decode(),
        "parameters": {"return_timestamps": False},
    }
    r = await client.post("/models/toy/audio", json=body)
    assert r.json() == {"text": "1.0 seconds at 8000"}
    r = await client.post("/models/toy/audio/pipeline/audio-to-audio", content=wav())
    blob = r.json()[0]
    assert (
        blob["content-type"] == "audio/flac"
        and soundfile.info(io.BytesIO(base64.b64decode(blob["blob"]))).format == "FLAC"
    )
    tts = await client.post("/models/toy/tts", json={"inputs": "hello"})
    assert (
        tts.headers["content-type"] == "audio/flac"
        and soundfile.info(io.BytesIO(tts.content)).format == "FLAC"
    )
    tts = await client.post("/models/toy/tts", json={"inputs": "hello"}, headers={"accept": "audio/wav"})
    assert (
        tts.headers["content-type"] == "audio/wav" and soundfile.info(io.BytesIO(tts.content)).format == "WAV"
    )


async def test_zero_shot_dict_for_huggingface_hub_before_1_0(client):
    body = {"inputs": "hi", "parameters": {"candidate_labels": "a,b"}}
    ua = {"user-agent": "unknown/None; hf_hub/0.21.4; python/3.10"}
    r = await client.post("/pipeline/zero-shot-classification/toy/text", json=body, headers=ua)
    assert r.json() == {"sequence": "", "labels": ["a", "b"], "scores": [0.5, 0.5]}
    ua = {"user-agent": "unknown/None; hf_hub/1.2.0; python/3.12"}
    r = await client.post("/pipeline/zero-shot-classification/toy/text", json=body, headers=ua)
    assert r.json() == [{"label": "a", "score": 0.5}, {"label": "b", "score": 0.5}]
