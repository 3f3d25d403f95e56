"""The diffusers backend on a tiny random Stable Diffusion pipeline: sizes, seeds, batches, image-to-image,
the per-model caps, and a call stopped midway by the server's cancel flag."""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pytest

pytest.importorskip("diffusers")
os.environ.setdefault("INFERD_TORCH_THREADS", "1")

from PIL import Image  # noqa: E402

from inferd.backends import Cancelled, InputError, get_backend  # noqa: E402
from inferd.backends.base import cancellable  # noqa: E402
from inferd.catalogue import ModelEntry  # noqa: E402

PROMPT = "An astronaut riding a horse on the moon."
BOTH = ("text-to-image", "image-to-image")


def load(folder, tasks=BOTH, **options):
    entry = ModelEntry("tiny/sd", tasks, "diffusers", "path:x", options=options)
    return get_backend("diffusers").load(entry, str(folder))


@pytest.fixture(scope="module")
def model(tiny_models):
    return load(tiny_models("text-to-image"), max_steps=400)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_text_to_image_draws_the_requested_size(model):
    [image] = model.predict("text-to-image", [PROMPT], {"height": 48, "width": 32, "num_inference_steps": 2})
    assert isinstance(image, Image.Image) and image.size == (32, 48)
    [default] = model.predict("text-to-image", [PROMPT], {"num_inference_steps": 2})
    assert default.size == (64, 64)  # the UNet's 32 x the VAE's factor 2


def test_the_same_seed_gives_the_same_pixels_alone_or_in_a_batch(model):
    params = {"seed": 7, "num_inference_steps": 3}
    [alone] = model.predict("text-to-image", [PROMPT], params)
    batched = model.predict("text-to-image", ["a red square", PROMPT], params)
    [other_seed] = model.predict("text-to-image", [PROMPT], {**params, "seed": 8})
    assert np.array_equal(pixels(alone), pixels(batched[1]))
    assert not np.array_equal(pixels(alone), pixels(batched[0]))  # the prompt matters
    assert not np.array_equal(pixels(alone), pixels(other_seed))


def test_image_to_image_keeps_the_size_and_follows_strength(model):
    source = Image.new("RGB", (48, 40), (200, 30, 30))
    params = {"prompt": "a cat", "num_inference_steps": 4, "seed": 1}
    [weak] = model.predict("image-to-image", [source], {**params, "strength": 0.3})
    [strong] = model.predict("image-to-image", [source], {**params, "strength": 1.0})
    assert weak.size == strong.size == (48, 40)
    assert not np.array_equal(pixels(weak), pixels(strong))
    # Two sizes in one batch: one pipeline call per size, results in input order.
    small = Image.new("RGB", (32, 32), (0, 0, 200))
    out = model.predict("image-to-image", [source, small], params)
    assert [im.size for im in out] == [(48, 40), (32, 32)]
    [resized] = model.predict(
        "image-to-image", [source], {**params, "target_size": {"width": 16, "height": 24}}
    )
    assert resized.size == (16, 24)


def test_a_compatible_scheduler_can_be_named(model):
    [image] = model.predict(
        "text-to-image", [PROMPT], {"scheduler": "EulerDiscreteScheduler", "num_inference_steps": 2}
    )
    assert image.size == (64, 64)
    assert type(model.pipes["text-to-image"].scheduler).__name__ == "DDIMScheduler"  # put back after the call


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"num_inference_steps": 401}, "num_inference_steps"),
        ({"height": 60}, "height"),
        ({"height": 2048, "width": 1024}, "height"),
        ({"scheduler": "NoSuchScheduler"}, "scheduler"),
        ({"strength": 0.5}, "strength"),  # an image-to-image parameter
    ],
)
def test_bad_values_are_input_errors_naming_the_field(model, params, field):
    with pytest.raises(InputError, match=field):
        model.predict("text-to-image", [PROMPT], params)


def test_caps_come_from_the_entry_options(tiny_models):
    capped = load(tiny_models("text-to-image"), ("text-to-image",), max_steps=3, max_pixels=32 * 32)
    assert capped.tasks == ("text-to-image",)
    with pytest.raises(InputError, match="at most 3 on this model"):
        capped.predict("text-to-image", [PROMPT], {"num_inference_steps": 4, "height": 32, "width": 32})
    with pytest.raises(InputError, match="max_pixels"):
        capped.predict("text-to-image", [PROMPT], {"num_inference_steps": 1})  # 64 x 64 by default
    with pytest.raises(ValueError, match="options.max_steps"):
        load(tiny_models("text-to-image"), max_steps=0)


def test_interrupt_stops_the_denoising_loop_and_progress_shows_the_steps(model):
    seen = []
    cancel = threading.Event()  # what the server's model thread raises when every request has gone

    def watch_then_interrupt():
        while not seen or seen[-1]["step"] < 2:
            progress = model.progress()
            if progress:
                seen.append(progress)
        cancel.set()

    watcher = threading.Thread(target=watch_then_interrupt)
    watcher.start()
    before = model.interrupted_calls
    with pytest.raises(Cancelled, match="Interrupted"), cancellable(cancel):
        model.predict("text-to-image", [PROMPT], {"num_inference_steps": 400, "height": 32, "width": 32})
    watcher.join()
    assert model.interrupted_calls == before + 1
    assert seen[-1]["total_steps"] == 400 and seen[-1]["step"] < 400
    assert model.progress() is None  # idle again


def test_unsafe_folders_are_refused(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models("text-to-image"), tmp_path / "sd")
    index = json.loads((folder / "model_index.json").read_text())
    index["unet"] = ["my_unet_module", "MyUNet"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(RuntimeError, match="trust_remote_code"):
        load(folder)
    (folder / "model_index.json").unlink()
    with pytest.raises(RuntimeError, match="model_index.json"):
        load(folder)
