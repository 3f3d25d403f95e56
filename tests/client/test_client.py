"""Construction, routing, headers, inputs, the non-task methods and chat, sync and async, against a local server."""

from __future__ import annotations

import inspect
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from inferd import AsyncInferenceClient, HfHubHTTPError, InferenceApi, InferenceClient, ModelStatus
from inferd.client import _common
from inferd.tasks import TASKS

from .conftest import LocalServer, collect, reply, run, sse

LABELS = [[{"label": "POSITIVE", "score": 0.9}]]
SECRET = "hf_secret_token_123456"


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    _common.clear_caches()


def png(size: tuple[int, int] = (4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


# ---- public surface -----------------------------------------------------------------------------


def test_sync_and_async_signatures_match() -> None:
    streaming = {"text_generation", "chat_completion", "post"}
    names = [n for n, v in inspect.getmembers(AsyncInferenceClient) if not n.startswith("_") and callable(v)]
    assert {"text_generation", "chat_completion", "post", "object_detection", "get_model_status"} <= set(
        names
    )
    for name in names:
        if name == "aclose":
            assert not hasattr(InferenceClient, name)
            continue
        sync_sig = inspect.signature(getattr(InferenceClient, name))
        async_sig = inspect.signature(getattr(AsyncInferenceClient, name))
        assert sync_sig.parameters == async_sig.parameters, name
        if name not in streaming:
            assert sync_sig.return_annotation == async_sig.return_annotation, name
        assert inspect.iscoroutinefunction(getattr(AsyncInferenceClient, name)) == (
            name != "get_recommended_model"
        )


def test_repr_never_shows_the_token() -> None:
    for cls in (InferenceClient, AsyncInferenceClient):
        client = cls("my-model", token=SECRET, timeout=3)
        assert repr(client) == f"<{cls.__name__}(model='my-model', timeout=3)>"
        assert SECRET not in repr(client) and SECRET not in str(vars(client).get("_transport"))


async def test_token_never_in_errors_or_logs(server: LocalServer, make_client: Any, caplog: Any) -> None:
    async def echo(request: Any) -> Any:  # a server that echoes the request headers in its error
        from aiohttp import web

        return web.json_response({"error": f"denied: {dict(request.headers)}"}, status=401)

    server.add("POST", "/models/m", echo)
    caplog.set_level(logging.DEBUG, logger="inferd")
    with pytest.raises(HfHubHTTPError) as info:
        await run(make_client("m", token=SECRET).text_classification("hi"))
    assert info.value.status_code == 401
    assert server.seen[-1].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(info.value) and SECRET not in (info.value.server_message or "")
    assert "denied" in str(info.value)
    assert SECRET not in caplog.text


async def test_headers_tokens_and_cookies(
    server: LocalServer, make_client: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    server.add("POST", "/models/m", reply(200, LABELS))
    await run(
        make_client(
            "m", headers={"User-Agent": "mine", "X-Extra": "1"}, cookies={"a": "b"}
        ).text_classification("x")
    )
    sent = server.seen[-1].headers
    assert (
        make_client("m", token="hf_x", headers={"AUTHORIZATION": "Bearer mine"}).headers["Authorization"]
        == "Bearer mine"
    )
    assert sent["user-agent"] == "mine" and sent["x-extra"] == "1" and sent["cookie"] == "a=b"
    assert "authorization" not in sent
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    await run(make_client("m").text_classification("x"))
    assert server.seen[-1].headers["authorization"] == "Bearer hf_from_env"
    await run(make_client("m", token=False).text_classification("x"))
    assert "authorization" not in server.seen[-1].headers
    await run(make_client("m", api_key="hf_key").text_classification("x"))
    assert server.seen[-1].headers["authorization"] == "Bearer hf_key"
    monkeypatch.delenv("HF_TOKEN")
    (tmp_path / "token").write_text("hf_from_file\n")
    await run(make_client("m").text_classification("x"))
    assert server.seen[-1].headers["authorization"] == "Bearer hf_from_file"
    with pytest.raises(ValueError, match="both `token` and `api_key`"):
        make_client("m", token="a", api_key="b")


# ---- where requests go --------------------------------------------------------------------------


async def test_routing(server: LocalServer, make_client: Any) -> None:
    for path in ("/models/m", "/models/other", "/pipeline/feature-extraction/m", "/custom/url"):
        server.add("POST", path, reply(200, LABELS if "feature" not in path else [0.1, 0.2]))
    client = make_client("m")
    await run(client.text_classification("x"))
    await run(client.text_classification("x", model="other"))  # the call's model wins
    await run(client.feature_extraction("x"))
    await run(client.text_classification("x", model=f"{server.url}/custom/url"))  # a URL is used verbatim
    assert [s.path for s in server.seen] == [
        "/models/m",
        "/models/other",
        "/pipeline/feature-extraction/m",
        "/custom/url",
    ]
    with pytest.raises(ValueError, match="You must specify at least a model"):
        await run(make_client().post(json={"inputs": "x"}))


# An inferd server names the task in the URL (/models/{id}/pipeline/{task}): one model may serve several.
async def test_base_url_of_a_server_publishing_tasks(server: LocalServer, make_client: Any) -> None:
    server.add("GET", "/api/tasks", reply(200, {"text-classification": {"widgetModels": ["tiny/sst2"]}, "sentence-similarity": {"widgetModels": ["tiny/st"]}}))  # fmt: skip
    server.add("POST", "/models/tiny/sst2/pipeline/text-classification", reply(200, LABELS))
    server.add("POST", "/models/tiny/st/pipeline/sentence-similarity", reply(200, [0.5]))
    client = make_client(base_url=server.url)
    assert await run(client.text_classification("x")) == LABELS[0]
    assert await run(client.sentence_similarity("a", ["b"])) == [0.5]
    assert await run(client.text_classification("x")) == LABELS[0]
    assert [s.path for s in server.seen].count("/api/tasks") == 1
    with pytest.raises(ValueError, match="Task fill-mask has no recommended model"):
        await run(client.fill_mask("a <mask>"))


async def test_base_url_of_a_tgi_server_is_the_model_url(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/", reply(200, [{"generated_text": " world"}]))
    client = make_client(base_url=server.url + "/")
    assert await run(client.text_generation("hello")) == " world"
    assert [s.path for s in server.seen] == ["/api/tasks", "/"]
    server.add("POST", "/models/m", reply(200, LABELS))
    await run(client.text_classification("x", model="m"))  # a model id goes under base_url
    assert server.seen[-1].path == "/models/m"


# ---- binary inputs ------------------------------------------------------------------------------


async def test_binary_inputs(server: LocalServer, make_client: Any, tmp_path: Path) -> None:
    image = png()
    path = tmp_path / "image.png"
    path.write_bytes(image)
    server.add("GET", "/files/image.png", reply(200, image, {"Content-Type": "image/png"}))
    server.add("POST", "/models/m", reply(200, [{"label": "cat", "score": 1.0}]))
    client = make_client("m")
    sources = [
        image,
        bytearray(image),
        str(path),
        path,
        path.open("rb"),
        f"{server.url}/files/image.png",
        Image.open(path),
    ]
    for source in sources:
        await run(client.image_classification(source))
        assert server.seen[-1].body == image, type(source)
    with pytest.raises(
        FileNotFoundError,
        match=re.escape(f"File not found at {tmp_path / 'nope.png'}. If `data` is a string"),
    ):
        await run(client.image_classification(str(tmp_path / "nope.png")))
    with pytest.raises(HfHubHTTPError, match=re.escape(f"{server.url}/files/missing.png: HTTP 404")):
        await run(client.image_classification(f"{server.url}/files/missing.png"))


async def test_binary_task_with_parameters_sends_json(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/models/m", reply(200, [{"label": "cat", "score": 1.0}]))
    await run(make_client("m").image_classification(b"\x89PNG", top_k=1))
    assert server.seen[-1].json() == {"inputs": "iVBORw==", "parameters": {"top_k": 1}}


# ---- task details -------------------------------------------------------------------------------


async def test_new_parameters_and_shapes(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/models/m", reply(200, LABELS))
    server.add("POST", "/pipeline/feature-extraction/e", reply(200, [[0.1, 0.2], [0.3, 0.4]]))
    server.add(
        "POST", "/models/asr", reply(200, {"text": "hi", "chunks": [{"text": "hi", "timestamp": [0.0, 0.5]}]})
    )
    client = make_client("m")
    await run(client.text_classification("x", top_k=2, function_to_apply="softmax"))
    assert server.seen[-1].json() == {
        "inputs": "x",
        "parameters": {"top_k": 2, "function_to_apply": "softmax"},
    }
    vectors = await run(client.feature_extraction(["a", "b"], model="e", normalize=True))
    assert vectors.shape == (2, 2) and vectors.dtype == np.float32
    assert server.seen[-1].json() == {"inputs": ["a", "b"], "normalize": True}
    answer = await run(client.automatic_speech_recognition(b"RIFF", model="asr", return_timestamps=True))
    assert answer["chunks"][0]["timestamp"] == [0.0, 0.5]
    assert await run(client.automatic_speech_recognition(b"RIFF", model="asr")) == "hi"
    with pytest.raises(ValueError, match="at least 2 classes"):
        await run(client.zero_shot_classification("x", ["only one"]))
    with pytest.raises(ValueError, match="`src_lang` without specifying `tgt_lang`"):
        await run(client.translation("x", src_lang="en"))


async def test_post(server: LocalServer, make_client: Any) -> None:
    server.add("POST", "/models/m", reply(200, LABELS))
    server.add("POST", "/models/s", sse("data: 1", "data: 2"))
    client = make_client("m")
    assert json.loads(await run(client.post(json={"inputs": "x"}))) == LABELS
    with pytest.warns(UserWarning, match="Ignoring `json`"):
        await run(client.post(json={"inputs": "x"}, data=b"raw"))
    assert server.seen[-1].body == b"raw"
    assert await collect(client.post(json={}, model="s", stream=True)) == [b"data: 1", b"data: 2"]


async def test_model_status_and_deployed_models(server: LocalServer, make_client: Any) -> None:
    server.add("GET", "/status/m", reply(200, {"loaded": True, "state": "Loaded", "compute_type": "cpu", "framework": "transformers"}))  # fmt: skip
    server.add("GET", "/status/gone", reply(404, {"error": "Model gone does not exist"}))
    for fw in _common.MAIN_INFERENCE_API_FRAMEWORKS:
        items = [
            {"model_id": f"{fw}/B", "task": "text-classification"},
            {"model_id": f"{fw}/a", "task": "text-classification"},
        ]
        server.add("GET", f"/framework/{fw}", reply(200, items))
    client = make_client()
    assert await run(client.get_model_status("m")) == ModelStatus(True, "Loaded", "cpu", "transformers")
    with pytest.raises(ValueError, match="Model gone does not exist"):
        await run(client.get_model_status("gone"))
    with pytest.raises(ValueError, match="Model id not provided"):
        await run(client.get_model_status())
    deployed = await run(client.list_deployed_models())
    assert len([s for s in server.seen if s.path.startswith("/framework/")]) == 4
    assert deployed["text-classification"][:2] == ["diffusers/a", "diffusers/B"]
    assert set(deployed) == {"text-classification", "feature-extraction", "sentence-similarity"}


async def test_health_and_info(server: LocalServer, make_client: Any) -> None:
    server.add("GET", "/health", reply(200, b""))
    server.add("GET", "/info", reply(200, {"model_id": "tiny"}))
    client = make_client(base_url=server.url)
    assert await run(client.health_check()) is True
    assert await run(client.get_endpoint_info()) == {"model_id": "tiny"}
    assert await run(make_client(f"{server.url}/nothing").health_check()) is False


# ---- chat ---------------------------------------------------------------------------------------

CHAT = {
    "id": "1", "created": 0, "model": "tiny", "system_fingerprint": "x",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello!"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}  # fmt: skip


def chunk(text: str) -> str:
    return "data: " + json.dumps({"id": "1", "created": 0, "model": "tiny", "system_fingerprint": "x", "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]})  # fmt: skip


async def test_chat_completion(server: LocalServer, make_client: Any) -> None:
    server.add(
        "POST", "/v1/chat/completions", reply(200, CHAT), sse(chunk("Hel"), chunk("lo"), "data: [DONE]")
    )
    client = make_client(base_url=server.url)
    messages = [{"role": "user", "content": "Hi"}]
    out = await run(client.chat_completion(messages, model="tiny", max_tokens=5))
    assert out.choices[0].message.content == "Hello!" and out["usage"]["total_tokens"] == 2
    assert server.seen[-1].json() == {"model": "tiny", "messages": messages, "max_tokens": 5, "stream": False}
    chunks = await collect(client.chat.completions.create(messages=messages, model="tiny", stream=True))
    assert "".join(c.choices[0].delta.content for c in chunks) == "Hello"
    assert server.seen[-1].json()["stream"] is True


async def test_context_managers(server: LocalServer) -> None:
    server.add("POST", "/models/m", reply(200, LABELS))
    with InferenceClient("m") as client:
        assert client.text_classification("x") == LABELS[0]
    async with AsyncInferenceClient("m") as aclient:
        assert await aclient.text_classification("x") == LABELS[0]


# ---- legacy InferenceApi ------------------------------------------------------------------------


def test_inference_api(server: LocalServer) -> None:
    server.add("GET", "/api/models/tiny/sst2", reply(200, {"pipeline_tag": "text-classification"}))
    server.add("POST", "/pipeline/text-classification/tiny/sst2", reply(200, LABELS))
    server.add("POST", "/pipeline/text-to-image/tiny/sst2", reply(200, png(), {"Content-Type": "image/png"}))
    with pytest.warns(FutureWarning, match="deprecated"):
        api = InferenceApi("tiny/sst2", token=SECRET)
    assert repr(api) == (
        f"InferenceAPI(api_url='{server.url}/pipeline/text-classification/tiny/sst2', task='text-classification',"
        " options={'wait_for_model': True, 'use_gpu': False})"
    )
    assert api(inputs="I like you") == LABELS
    assert server.seen[-1].json() == {
        "options": {"wait_for_model": True, "use_gpu": False},
        "inputs": "I like you",
    }
    with pytest.warns(UserWarning, match="different task"), pytest.warns(FutureWarning):
        image_api = InferenceApi("tiny/sst2", task="text-to-image")
    assert image_api("a cat").size == (4, 3)
    with pytest.raises(ValueError, match="Invalid task make-coffee"), pytest.warns(FutureWarning):
        InferenceApi("tiny/sst2", task="make-coffee")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_parameter_is_a_keyword_of_its_method(task: str) -> None:
    # Parameter names come from inferd.tasks, the single source: a new one there shows up here.
    spec = TASKS[task]
    accepted = inspect.signature(getattr(InferenceClient, spec.python_name)).parameters
    if task == "conversational":
        assert "parameters" in accepted
        return
    missing = {p.name for p in spec.parameters} - set(accepted)
    assert not missing, f"{spec.python_name} lacks {sorted(missing)}"
