"""What a new user sees: `python -m inferd serve` with no flags, nothing loaded, and today's clients' first calls.

Each server is started for the test (a subprocess on a free port) so that every first call meets models that
have never been loaded: huggingface_hub 2.x (every default task, in its own process), the openai SDK with no
retries, text-generation's Client, and huggingface_hub 0.36 (the venv's). Then --preload-defaults, which loads
every default model before the port opens, and the exit code of an unknown --preload.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image

import inferd

HUB2 = Path(sys.prefix) / "hub2"  # `make install` puts huggingface_hub 2.x in the venv's folder
SRC = str(Path(inferd.__file__).resolve().parents[1])
LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
# Default tasks huggingface_hub 2.x cannot call on a URL: its hf-inference provider dropped the task, and the
# client refuses it before sending anything.
NOT_IN_HUB2 = {"tabular-regression"}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def inferd_serve(tmp_path: Path, *flags: str) -> Iterator[str]:
    """The URL of a fresh `python -m inferd serve --port <free> <flags>`, once its port accepts connections."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "inferd", "serve", "--port", str(port), "--log-level", "warning", *flags],
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "inferd serve did not open its port within 300 s"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def default_models(url: str) -> dict[str, str]:
    """task -> the server's default model for it (GET /api/tasks), none of which may be loaded yet."""
    tasks = httpx.get(f"{url}/api/tasks").json()
    served = {t: info["widgetModels"][0] for t, info in tasks.items() if info.get("widgetModels")}
    assert served, "the default catalogue has no model installed: run `make install`"
    return served


def loaded(url: str, model_id: str) -> bool:
    return bool(httpx.get(f"{url}/status/{model_id}").json()["loaded"])


def test_huggingface_hub_2_first_call_of_every_default_task(tmp_path):
    if not (HUB2 / "huggingface_hub").is_dir():
        pytest.skip(f"huggingface_hub 2.x is not installed in {HUB2} (`make install` puts it there)")
    script = Path(__file__).with_name("hub2_first_calls.py")
    with inferd_serve(tmp_path) as url:
        served = default_models(url)
        assert not any(loaded(url, m) for m in served.values())  # cold: every call below meets a load
        env = {**os.environ, "PYTHONPATH": str(HUB2)}
        run = subprocess.run(
            [sys.executable, str(script), url], env=env, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stderr[-3000:]
        report = json.loads(run.stdout)
    print(f"huggingface_hub {report['version']} first calls (s): {report['seconds']}")
    assert report["version"].startswith("2.")
    results = report["results"]
    assert set(served) - NOT_IN_HUB2 <= set(results), (
        "a default task has no first call in hub2_first_calls.py"
    )
    failed = {task: r for task, r in results.items() if task in served and not r.startswith("ok")}
    assert not failed


def test_openai_sdk_first_calls_without_retries_and_the_old_client(tmp_path):
    import openai
    from huggingface_hub import InferenceClient

    with inferd_serve(tmp_path) as url:
        served = default_models(url)
        assert not loaded(url, LLM) and not loaded(url, EMBEDDER)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        chat = client.chat.completions.create(
            model=LLM, messages=[{"role": "user", "content": "Say hi."}], max_tokens=5
        )
        assert chat.choices[0].message.content
        vectors = client.embeddings.create(model=EMBEDDER, input="hello")
        assert len(vectors.data[0].embedding) == 384
        assert client.completions.create(model=LLM, prompt="The sky is", max_tokens=3).choices[0].text
        # The speech routes, on the cold default voice and speech recogniser.
        tts, asr = served["text-to-speech"], served["automatic-speech-recognition"]
        assert not loaded(url, tts) and not loaded(url, asr)
        speech = client.audio.speech.create(
            model="tts-1", voice="alloy", input="Hello.", response_format="wav"
        )
        heard = client.audio.transcriptions.create(model="whisper-1", file=("hello.wav", speech.read()))
        assert isinstance(heard.text, str)

        # huggingface_hub 0.36 (the venv's), on models still cold.
        old = InferenceClient()
        classifier, tagger = served["text-classification"], served["token-classification"]
        assert not loaded(url, classifier) and not loaded(url, tagger)
        assert old.text_classification("I love it", model=f"{url}/models/{classifier}")[0].label
        assert old.token_classification("Tim Cook is in Berlin.", model=f"{url}/models/{tagger}")

        # A client that will not wait gets the hosted API's 503 at once, and the load starts.
        detector, photo = served["object-detection"], io.BytesIO()
        Image.new("RGB", (64, 64), "white").save(photo, format="PNG")
        r = httpx.post(
            f"{url}/models/{detector}", content=photo.getvalue(), headers={"X-Wait-For-Model": "false"}
        )
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        body = r.json()
        assert body["error_type"] == "model_loading" and body["estimated_time"] > 0
        assert body["error"] == f"Model {detector} is currently loading"


def test_text_generation_client_first_call_and_inferds_fidelity(tmp_path):
    from text_generation import Client

    with inferd_serve(tmp_path) as url:
        assert not loaded(url, LLM)
        answer = Client(f"{url}/models/{LLM}", timeout=300).generate("The sky is", max_new_tokens=4)
        assert answer.generated_text and answer.details.generated_tokens == 4

        # inferd's client against the same real model: as huggingface_hub 0.21, a TGI parameter the runtime
        # refuses (`watermark`, llama.cpp has none) marks the server not-TGI: details=True warns and gives str.
        client = inferd.InferenceClient(model=f"{url}/models/{LLM}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            text = client.text_generation("The sky is", max_new_tokens=3, watermark=True, details=True)
        assert isinstance(text, str) and text
        messages = [str(w.message) for w in caught]
        assert any("`details=True` will be ignored" in m for m in messages), messages

        # chat_completion("some text") sends the string as it is; the server's 4xx reaches the caller typed.
        with pytest.raises(inferd.errors.HfHubHTTPError) as err:
            inferd.InferenceClient(base_url=url).chat_completion("some text", model=LLM, max_tokens=3)
        # Not "`messages[0]` must be an object": the server saw the string, not a list of its characters.
        assert err.value.status_code == 400
        assert err.value.server_message == "`messages` must be a non-empty list of {role, content} objects."


def test_preload_defaults_loads_every_default_model_before_the_port_opens_and_flags_reach_the_app(tmp_path):
    flags = ["--preload-defaults", "--max-client-batch-size", "7", "--no-docs"]
    with inferd_serve(tmp_path, *flags) as url:
        # First contact, the moment the port accepts connections: every preload is done, none under way.
        health = httpx.get(f"{url}/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        served = default_models(url)
        assert [m for m in set(served.values()) if not loaded(url, m)] == []

        assert httpx.get(f"{url}/info").json()["max_client_batch_size"] == 7
        classifier = f"{url}/models/{served['text-classification']}"
        assert httpx.post(classifier, json={"inputs": ["I like you"] * 7}).status_code == 200
        too_many = httpx.post(classifier, json={"inputs": ["I like you"] * 8})
        assert too_many.status_code == 413 and "7" in too_many.json()["error"], too_many.text
        assert httpx.get(f"{url}/docs").status_code == 404
        assert httpx.get(f"{url}/openapi.json").status_code == 200  # the schema stays: only the UI is gone


def test_an_unknown_preload_exits_2_naming_it(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "inferd", "serve", "--preload", "all", "nope/model"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "--preload names unknown models: nope/model" in run.stderr
