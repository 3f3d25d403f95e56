"""The first call of every task a server has a default model for, made with huggingface_hub 2.x's
InferenceClient, as a new user would on a freshly started `inferd serve`.

    PYTHONPATH=<huggingface_hub 2.x folder> python hub2_first_calls.py http://127.0.0.1:8080

Run in its own process (the project's venv holds huggingface_hub 0.36); imports nothing from inferd. Prints one
JSON object: {"version", "results": {task: "ok: <what came back>" | "error: <exception>"}}.
"""

from __future__ import annotations

import io
import json
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import huggingface_hub
from huggingface_hub import InferenceClient
from PIL import Image, ImageDraw


def _photo(side: int = 224) -> bytes:
    """An orange disc on sky blue, as PNG."""
    image = Image.new("RGB", (side, side), "skyblue")
    ImageDraw.Draw(image).ellipse((side * 0.27, side * 0.27, side * 0.73, side * 0.73), fill="orange")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _noisy_speech(flac: bytes) -> bytes:
    """The server's own speech with a hiss added (a WAV): something for the denoiser to remove."""
    import numpy as np
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(flac), dtype="float32")
    noise = np.random.default_rng(0).standard_normal(samples.shape).astype(np.float32)
    out = io.BytesIO()
    soundfile.write(out, np.clip(samples + 0.02 * noise, -1, 1), rate, format="WAV")
    return out.getvalue()


def _text_image() -> bytes:
    image = Image.new("RGB", (320, 64), "white")
    ImageDraw.Draw(image).text((12, 20), "Invoice 4521", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def main(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/tasks", timeout=30) as r:
        served = {t: info["widgetModels"][0] for t, info in json.load(r).items() if info.get("widgetModels")}

    def client(task: str) -> InferenceClient:
        # The route names the task: one model (SmolLM2) serves several. No timeout, huggingface_hub's default.
        return InferenceClient(model=f"{base}/models/{served[task]}/pipeline/{task}")

    photo, speech = _photo(), {}

    def tts() -> Any:
        speech["audio"] = client("text-to-speech").text_to_speech("Hello world, this is a test.")
        return f"{len(speech['audio'])} bytes"

    iris = {"sepal length (cm)": ["5.1"], "sepal width (cm)": ["3.5"]}
    iris |= {"petal length (cm)": ["1.4"], "petal width (cm)": ["0.2"]}
    calls: dict[str, Callable[[], Any]] = {
        "text-classification": lambda: client("text-classification").text_classification("I love it"),
        "token-classification": lambda: client("token-classification").token_classification(
            "Tim Cook met Angela Merkel in Berlin."
        ),
        "feature-extraction": lambda: client("feature-extraction").feature_extraction("Hello").shape,
        "sentence-similarity": lambda: client("sentence-similarity").sentence_similarity(
            "A cat sits.", ["A cat is sitting.", "Stocks fell."]
        ),
        "zero-shot-classification": lambda: client("zero-shot-classification").zero_shot_classification(
            "The central bank raised rates.", ["finance", "sports"]
        ),
        "text-generation": lambda: client("text-generation").text_generation(
            "The capital of France is", max_new_tokens=5
        ),
        "conversational": lambda: (
            InferenceClient(base_url=base)
            .chat_completion(
                [{"role": "user", "content": "Say hi."}], model=served["conversational"], max_tokens=5
            )
            .choices[0]
            .message.content
        ),
        "summarization": lambda: client("summarization").summarization(
            "The Eiffel Tower is a lattice tower in Paris. It was completed in 1889."
        ),
        "question-answering": lambda: client("question-answering").question_answering(
            question="When was it completed?", context="The tower was completed in 1889."
        ),
        "tabular-classification": lambda: client("tabular-classification").tabular_classification(iris),
        # No tabular-regression: huggingface_hub 2.x refuses it for a URL (its hf-inference provider dropped it).
        "text-to-speech": tts,
        "automatic-speech-recognition": lambda: client(
            "automatic-speech-recognition"
        ).automatic_speech_recognition(speech["audio"]),
        "audio-classification": lambda: client("audio-classification").audio_classification(speech["audio"]),
        "audio-to-audio": lambda: [
            (t.label, t.content_type, len(t.blob))
            for t in client("audio-to-audio").audio_to_audio(_noisy_speech(speech["audio"]))
        ],
        "translation": lambda: client("translation").translation(
            "The book is on the table.", src_lang="en", tgt_lang="pt"
        ),
        # small: super-resolution costs about 0.6 ms per input pixel on busy cores
        "image-to-image": lambda: client("image-to-image").image_to_image(_photo(48)).size,
        "image-classification": lambda: client("image-classification").image_classification(photo),
        "object-detection": lambda: client("object-detection").object_detection(photo),
        "image-segmentation": lambda: len(client("image-segmentation").image_segmentation(photo)),
        "image-to-text": lambda: client("image-to-text").image_to_text(_text_image()),
    }
    results: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for task, call in calls.items():
        if task not in served:
            results[task] = "not served"
            continue
        started = time.perf_counter()
        try:
            results[task] = f"ok: {str(call())[:120]}"
        except Exception as exc:
            results[task] = f"error: {type(exc).__name__}: {str(exc)[:300]}"
        seconds[task] = round(time.perf_counter() - started, 2)
    return {"version": huggingface_hub.__version__, "results": results, "seconds": seconds}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
