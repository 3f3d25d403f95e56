"""A tiny deterministic test backend and an app over the real Engine, for the HTTP tests (no mocks).

`toy` models answer every task in the wire shape a real backend would, from simple rules on the input.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image

from inferd.backends import (
    Backend,
    GeneratedToken,
    Generation,
    InputError,
    Model,
    StreamStep,
    TextGenerator,
    check_cancelled,
    register_backend,
)
from inferd.catalogue import ModelEntry
from inferd.server.app import create_app
from inferd.server.engine import Engine, EngineSettings
from inferd.server.settings import ServerSettings
from inferd.tasks import Audio

TEXT_TASKS = (
    "text-classification",
    "zero-shot-classification",
    "token-classification",
    "fill-mask",
    "summarization",
    "translation",
    "question-answering",
    "table-question-answering",
    "tabular-classification",
    "tabular-regression",
)
VISION_TASKS = (
    "image-classification",
    "image-segmentation",
    "object-detection",
    "image-to-image",
    "image-to-text",
    "zero-shot-image-classification",
    "visual-question-answering",
)
AUDIO_TASKS = ("automatic-speech-recognition", "audio-classification", "audio-to-audio")


class Toy(Model):
    """One model for all the non-generation tasks; `delay` slows every batch (timeouts, 429s)."""

    def __init__(self, tasks: tuple[str, ...], delay: float = 0.0) -> None:
        self.tasks = tasks
        self.delay = delay
        self.batches: list[tuple[str, int]] = []

    def predict(self, task, inputs, parameters):
        self.batches.append((task, len(inputs)))
        if self.delay:
            time.sleep(self.delay)
        return [self._one(task, x, parameters) for x in inputs]

    def _one(self, task, x, p):  # noqa: C901 - one rule per task, on purpose
        if task == "text-classification":
            if x == "boom":
                raise RuntimeError("the toy model exploded")
            if x == "reject":
                raise InputError("The toy model refuses 'reject'.")
            pos = 0.9 if "love" in x else 0.1
            return [{"label": "POSITIVE", "score": pos}, {"label": "NEGATIVE", "score": 1 - pos}]
        if task in ("zero-shot-classification", "zero-shot-image-classification"):
            labels = p["candidate_labels"]
            return {"sequence": "x", "labels": labels, "scores": [1 / len(labels)] * len(labels)}
        if task == "token-classification":
            return [
                {
                    "entity_group": "PER",
                    "word": x.split()[0],
                    "start": 0,
                    "end": len(x.split()[0]),
                    "score": 0.9,
                }
            ]
        if task == "fill-mask":
            return [{"sequence": x.replace("[MASK]", "cat"), "score": 0.5, "token": 1, "token_str": "cat"}]
        if task == "summarization":
            return {"summary_text": x[:10]}
        if task == "translation":
            return {"translation_text": x.upper()}
        if task == "question-answering":
            return {"answer": x["context"][:3], "start": 0, "end": 3, "score": 0.5}
        if task == "table-question-answering":
            return {"answer": "1", "coordinates": [[0, 0]], "cells": ["1"], "aggregator": "NONE"}
        if task == "tabular-classification":
            return ["setosa"] * len(next(iter(x.values())))
        if task == "tabular-regression":
            return [1.5] * len(next(iter(x.values())))
        if task == "feature-extraction":
            return np.arange(4, dtype=np.float32) + len(x)
        if task == "sentence-similarity":
            return np.array([1.0 / (1 + abs(len(s) - len(x["source_sentence"]))) for s in x["sentences"]])
        if task == "image-classification":
            return [{"label": f"{x.width}x{x.height}", "score": 1.0}]
        if task == "image-segmentation":
            return [{"label": "all", "score": 1.0, "mask": Image.new("L", x.size, 255)}]
        if task == "object-detection":
            return [
                {
                    "label": "thing",
                    "score": 0.9,
                    "box": {"xmin": 0, "ymin": 0, "xmax": x.width, "ymax": x.height},
                }
            ]
        if task == "image-to-image":
            return x.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if task == "image-to-text":
            return {"generated_text": f"an image of {x.width}x{x.height}"}
        if task == "visual-question-answering":
            return [{"answer": x["question"][::-1], "score": 0.5}]
        if task == "automatic-speech-recognition":
            return {"text": f"{x.seconds:.1f} seconds at {x.sampling_rate}"}
        if task == "audio-classification":
            return [{"label": "speech", "score": 1.0}]
        if task == "audio-to-audio":
            return [
                {
                    "label": "clean",
                    "blob": Audio(x.array * 0.5, x.sampling_rate),
                    "content-type": "audio/flac",
                }
            ]
        if task == "text-to-speech":
            return Audio(np.zeros(1600, dtype=np.float32), 16000)
        if task == "text-to-image":
            return Image.new("RGB", (p.get("width", 16), p.get("height", 8)), "red")
        raise AssertionError(task)


class Llm(TextGenerator):
    """Says the words 'w0 w1 ...'; streams them `delay` seconds apart; `stopped` is set when a stream ends."""

    tasks = ("text-generation",)
    supported_parameters = frozenset({"max_new_tokens", "stop", "seed", "do_sample", "temperature", "top_p"})

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.stopped = threading.Event()
        self.streamed = 0
        self.generated = 0  # tokens made by generate(), for tests of cancellation
        # When set, stream() makes each token after the first only once a release lets it (10 s at most).
        self.token_gate: threading.Semaphore | None = None
        self.logprobs: list[
            float
        ] = []  # the first tokens' logprobs (then -0.5), for tests of non-finite ones

    def _logprob(self, i):
        return self.logprobs[i] if i < len(self.logprobs) else -0.5

    def _words(self, parameters):
        n = parameters.get("max_new_tokens", 3)
        return [GeneratedToken(i, f" w{i}", self._logprob(i)) for i in range(n)]

    def generate(self, prompt, parameters):
        tokens = []
        for token in self._words(parameters):
            if self.delay:  # a decode loop: one token per `delay`, stopping when its request has ended
                time.sleep(self.delay)
                check_cancelled()
            tokens.append(token)
            self.generated += 1
        return Generation(
            "".join(t.text for t in tokens), tokens, "length", prompt_tokens=len(prompt.split())
        )

    def stream(self, prompt, parameters):
        self.stopped.clear()
        n = parameters.get("max_new_tokens", 3)
        try:
            for i in range(n):
                if self.delay:
                    time.sleep(self.delay)
                if i and self.token_gate is not None and not self.token_gate.acquire(timeout=10):
                    raise RuntimeError(f"token {i - 1} was not read within 10 s")
                self.streamed = i + 1
                token = GeneratedToken(i, f" w{i}", self._logprob(i))
                yield StreamStep(token, "length" if i == n - 1 else None)
        finally:
            self.stopped.set()

    def chat_prompt(self, messages):
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    def count_tokens(self, text):
        return len(text.split())


class ToyBackend(Backend):
    name = "toy"

    def __init__(self) -> None:
        self.models: dict[str, Model] = {}

    def load(self, entry, path):
        kind = entry.options.get("kind", "toy")
        delay = float(entry.options.get("delay", 0.0))
        model = Llm(delay) if kind == "llm" else Toy(entry.tasks, delay)
        self.models[entry.model_id] = model
        return model


def catalogue(folder: Path) -> dict[str, ModelEntry]:
    folder.mkdir(exist_ok=True)
    src = f"path:{folder}"

    def e(model_id, tasks, **kw):
        return ModelEntry(model_id, tuple(tasks), "toy", src, **kw)

    entries = [
        e("toy/text", TEXT_TASKS, default_for=TEXT_TASKS),
        e("toy/minilm", ("feature-extraction", "sentence-similarity")),
        e("toy/vision", VISION_TASKS),
        e("toy/audio", AUDIO_TASKS),
        e("toy/tts", ("text-to-speech",)),
        e("toy/paint", ("text-to-image",), approximations={"text-to-image": "draws a red rectangle"}),
        e("toy/llm", ("text-generation", "chat-completion"), options={"kind": "llm"}),
        e("toy/slow", ("text-classification",), options={"delay": 0.5}),
        e("toy/slow-llm", ("text-generation",), options={"kind": "llm", "delay": 0.05}),
        e("toy/lazy", ("text-classification",)),
    ]
    return {x.model_id: x for x in entries}


PRELOAD = (
    "toy/text",
    "toy/minilm",
    "toy/vision",
    "toy/audio",
    "toy/tts",
    "toy/paint",
    "toy/llm",
    "toy/slow",
    "toy/slow-llm",
)


def make_app(tmp_path: Path, settings: ServerSettings | None = None, **engine_kw):
    """(app, engine, backend) over the real Engine with toy models; the app's lifespan preloads them."""
    backend = ToyBackend()
    register_backend("toy", backend)
    engine_settings = EngineSettings(
        allowed_dirs=(tmp_path,), digest_cache=tmp_path / "digests.json", preload=PRELOAD, **engine_kw
    )
    engine = Engine(catalogue(tmp_path / "models"), engine_settings)
    return create_app(engine, settings or ServerSettings()), engine, backend


@asynccontextmanager
async def running(tmp_path: Path, settings: ServerSettings | None = None, **engine_kw):
    """An httpx client calling the app in process (ASGITransport runs no lifespan: the engine is started here)."""
    app, engine, backend = make_app(tmp_path, settings, **engine_kw)
    await engine.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://inferd") as client:
            client.backend = backend  # type: ignore[attr-defined]
            yield client
    finally:
        await engine.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(tmp_path: Path, settings: ServerSettings | None = None, **engine_kw):
    """(base url, backend) of the toy app on a real uvicorn, on a free port of 127.0.0.1."""
    app, _, backend = make_app(tmp_path, settings, **engine_kw)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", backend
    finally:
        server.should_exit = True
        await task
