"""The real clients, unchanged, against `inferd serve` on uvicorn: huggingface_hub, text_generation, openai."""

import asyncio
import io
import warnings

import numpy as np
import pytest
from appkit import serving
from PIL import Image


@pytest.fixture
async def url(tmp_path):
    async with serving(tmp_path) as (base, _):
        yield base


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), "blue").save(out, format="PNG")
    return out.getvalue()


def huggingface_hub_calls(base: str) -> None:
    from huggingface_hub import InferenceClient

    text = InferenceClient(model=f"{base}/models/toy/text")
    assert text.text_classification("I love it")[0].label == "POSITIVE"
    labels = text.zero_shot_classification("hi", candidate_labels=["a", "b"])
    assert [x.label for x in labels] == ["a", "b"]
    # a model serving several text tasks answers its first one on the model URL; the others have a pipeline URL
    summarizer = InferenceClient(model=f"{base}/models/toy/text/pipeline/summarization")
    assert summarizer.summarization("a long text").summary_text == "a long tex"
    minilm = InferenceClient(model=f"{base}/models/toy/minilm")
    assert np.allclose(minilm.feature_extraction("abc"), [3, 4, 5, 6])
    assert minilm.sentence_similarity("abc", other_sentences=["abc", "abcd"]) == [1.0, 0.5]
    vision = InferenceClient(model=f"{base}/models/toy/vision")
    assert vision.image_classification(png())[0].label == "4x3"
    image = InferenceClient(model=f"{base}/models/toy/paint").text_to_image("a red square")
    assert image.size == (16, 8)
    llm = InferenceClient(model=f"{base}/models/toy/llm")
    out = llm.text_generation("hi", max_new_tokens=2, details=True, return_full_text=False)
    assert out.generated_text == " w0 w1" and out.details.generated_tokens == 2
    assert llm.text_generation("hi", max_new_tokens=1) == "hi w0"  # TGI's compat default: the full text
    assert "".join(llm.text_generation("hi", max_new_tokens=3, stream=True)) == " w0 w1 w2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the client warns that it drops the parameter, then retries
        assert llm.text_generation("hi", max_new_tokens=1, repetition_penalty=1.2) == "hi w0"
    chat = llm.chat_completion([{"role": "user", "content": "hi"}], max_tokens=2)
    assert chat.choices[0].message.content == " w0 w1"
    pieces = llm.chat_completion([{"role": "user", "content": "hi"}], max_tokens=2, stream=True)
    assert "".join(p.choices[0].delta.content or "" for p in pieces) == " w0 w1"
    assert InferenceClient(provider="hf-inference").health_check(f"{base}/models/toy/llm")
    info = InferenceClient(provider="hf-inference").get_endpoint_info(model=f"{base}/models/toy/llm")
    assert info["model_id"] == "toy/llm"


def text_generation_calls(base: str) -> None:
    from text_generation import Client

    client = Client(f"{base}/models/toy/llm")
    assert client.generate("hi", max_new_tokens=2).generated_text == " w0 w1"
    tokens = [r.token.text for r in client.generate_stream("hi", max_new_tokens=2)]
    assert tokens == [" w0", " w1"]


def openai_calls(base: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    answer = client.chat.completions.create(
        model="toy/llm", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert answer.choices[0].message.content == " w0 w1" and answer.usage.completion_tokens == 2
    stream = client.chat.completions.create(
        model="tgi", messages=[{"role": "user", "content": "hi"}], max_tokens=3, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == " w0 w1 w2"
    assert "toy/llm" in [m.id for m in client.models.list()]


@pytest.mark.parametrize("calls", [huggingface_hub_calls, text_generation_calls, openai_calls])
async def test_client(url, calls):
    await asyncio.to_thread(calls, url)
