"""Image generation end to end: a tiny random Stable Diffusion pipeline behind the real server (uvicorn), called
by inferd's client, huggingface_hub's InferenceClient and the openai SDK, unchanged; the engine stops a
denoising loop nobody waits for; a server with no such model says how to add one."""

from __future__ import annotations

import asyncio
import base64
import io
import os

import numpy as np
import pytest

pytest.importorskip("diffusers")
os.environ.setdefault("INFERD_TORCH_THREADS", "1")

import httpx  # noqa: E402
from PIL import Image  # noqa: E402
from tinyserver import tiny_server  # noqa: E402

from inferd import InferenceClient  # noqa: E402
from inferd.catalogue import ModelEntry  # noqa: E402
from inferd.server.app import create_app  # noqa: E402
from inferd.server.engine import Engine, EngineSettings  # noqa: E402
from inferd.server.settings import ServerSettings  # noqa: E402

MODEL = "tiny/sd"
BOTH = ("text-to-image", "image-to-image")
FAST = {"num_inference_steps": 2}


@pytest.fixture(scope="module")
def base_url(tiny_models, tmp_path_factory):
    models = {MODEL: ("text-to-image", BOTH, BOTH)}
    options = {MODEL: {"max_steps": 20, "max_pixels": 128 * 128}}
    with tiny_server(tiny_models, tmp_path_factory.mktemp("images"), models, options) as url:
        yield url


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_the_seed_example_runs_as_written_through_inferds_client(base_url):
    client = InferenceClient(base_url=base_url)
    image = client.text_to_image("An astronaut riding a horse on the moon.")  # the server's default model
    assert isinstance(image, Image.Image) and image.size == (64, 64)
    sized = client.text_to_image("a red square", height=32, width=48, num_inference_steps=2, seed=5)
    again = client.text_to_image("a red square", height=32, width=48, num_inference_steps=2, seed=5)
    assert sized.size == (48, 32)
    assert np.array_equal(np.asarray(sized), np.asarray(again))
    source = Image.new("RGB", (40, 32), (10, 200, 30))
    out = client.image_to_image(png(source), prompt="a cat", strength=0.5, num_inference_steps=4, model=MODEL)
    assert isinstance(out, Image.Image) and out.size == (40, 32)


def test_huggingface_hub_client(base_url):
    from huggingface_hub import InferenceClient as HubClient

    client = HubClient(model=f"{base_url}/models/{MODEL}")
    image = client.text_to_image("An astronaut riding a horse on the moon.", num_inference_steps=2, seed=1)
    assert isinstance(image, Image.Image) and image.size == (64, 64)
    image = client.text_to_image(
        "a blue sky", height=32, width=32, negative_prompt="a cat", guidance_scale=3.0
    )
    assert image.size == (32, 32)
    source = Image.new("RGB", (32, 32), (200, 200, 0))
    out = client.image_to_image(png(source), prompt="a tiger", num_inference_steps=3)
    assert isinstance(out, Image.Image) and out.size == (32, 32)


def test_openai_images_generate(base_url):
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    answer = client.images.generate(
        model=MODEL, prompt="a red square", n=2, size="48x32", response_format="b64_json", extra_body=FAST
    )
    images = [Image.open(io.BytesIO(base64.b64decode(d.b64_json))) for d in answer.data]
    assert [im.size for im in images] == [(48, 32), (48, 32)]
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))  # no seed: two draws
    with pytest.raises(BadRequestError, match="stores no files"):
        client.images.generate(prompt="a red square", response_format="url")
    with pytest.raises(BadRequestError, match="size"):
        client.images.generate(prompt="a red square", size="big", response_format="b64_json")


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"num_inference_steps": 21}, "num_inference_steps"),  # the model's max_steps
        ({"num_inference_steps": 0}, "num_inference_steps"),  # the task's bounds
        ({"height": 256, "width": 256}, "height"),  # the model's max_pixels
        ({"height": 30}, "height"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"seed": "x"}, "seed"),
        ({"strength": 0.5}, "strength"),  # image-to-image only
    ],
)
def test_bad_parameters_answer_4xx_naming_the_field(base_url, parameters, field):
    answer = httpx.post(
        f"{base_url}/pipeline/text-to-image/{MODEL}",
        json={"inputs": "a cat", "parameters": parameters},
        timeout=60,
    )
    assert 400 <= answer.status_code < 500, answer.text
    body = answer.json()
    assert field in body["error"] and body["error_type"]


def test_openai_route_refuses_bad_fields(base_url):
    for body, field in (
        ({"prompt": "x", "n": 11}, "n"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "quality": "hd"}, "quality"),
    ):
        answer = httpx.post(f"{base_url}/v1/images/generations", json=body, timeout=60)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == field  # OpenAI's error shape


async def test_a_cancelled_request_stops_the_denoising_loop(tiny_models, tmp_path):
    entry = ModelEntry(
        MODEL, BOTH, "diffusers", f"path:{tiny_models('text-to-image')}", options={"max_steps": 500}
    )
    engine = Engine(
        {MODEL: entry},
        EngineSettings(allowed_dirs=(tiny_models.root,), digest_cache=tmp_path / "d.json", preload=(MODEL,)),
    )
    await engine.start()
    try:
        params = {"num_inference_steps": 500, "height": 32, "width": 32}
        request = asyncio.create_task(engine.predict(MODEL, "text-to-image", ["a cat"], params))
        while not (progress := engine.status(MODEL).get("progress")):
            await asyncio.sleep(0.01)
        assert progress["total_steps"] == 500 and progress["task"] == "text-to-image"
        request.cancel()  # what a client disconnect does to the request's task
        with pytest.raises(asyncio.CancelledError):
            await request
        model = engine.registry.slots[MODEL].model
        while model.progress() is not None:
            await asyncio.sleep(0.01)
        assert model.interrupted_calls == 1
        # The model serves the next request as usual.
        [image] = await engine.predict(MODEL, "text-to-image", ["a cat"], {"num_inference_steps": 2})
        assert image.size == (64, 64)
    finally:
        await engine.close()


async def test_no_text_to_image_model_says_how_to_add_a_diffusers_folder(tmp_path):
    app = create_app(Engine({}, EngineSettings(digest_cache=tmp_path / "d.json")), ServerSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inferd") as client:
        hf = await client.post("/pipeline/text-to-image/some/model", json={"inputs": "a cat"})
        oa = await client.post("/v1/images/generations", json={"prompt": "a cat"})
    assert hf.status_code == oa.status_code == 404
    for message in (hf.json()["error"], oa.json()["error"]["message"]):
        assert 'backend = "diffusers"' in message and "model_index.json" in message
        assert 'tasks = ["text-to-image"]' in message
