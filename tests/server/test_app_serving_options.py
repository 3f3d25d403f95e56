"""Health that can fail, CORS and gzip: what an operator puts in front of a load balancer or a browser."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import httpx
import numpy as np
import pytest
from appkit import Toy, running, serving
from PIL import Image
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import StreamingResponse
from starlette.routing import Route

from inferd.backends import Backend, register_backend
from inferd.catalogue import ModelEntry
from inferd.cli import build_parser, main
from inferd.cli_serve import serve_values
from inferd.server.app import create_app
from inferd.server.config import ConfigError, load_config, server_settings
from inferd.server.engine import Engine, EngineSettings
from inferd.server.middleware import GZipUnlessStreaming
from inferd.server.settings import ServerSettings

KEY = {"Authorization": "Bearer sekret"}
ORIGIN = "http://app.example:3000"


# ---- health -------------------------------------------------------------------------------------------------
class Sized(Toy):
    def memory_bytes(self):
        return 100


class FlakyBackend(Backend):
    """Loads toy classifiers of 100 bytes; a model named in `fail` raises that message; loads wait for `gate`."""

    def __init__(self) -> None:
        self.fail: dict[str, str] = {}
        self.gate = threading.Event()
        self.gate.set()

    def load(self, entry, path):
        assert self.gate.wait(10)
        if entry.model_id in self.fail:
            raise RuntimeError(self.fail[entry.model_id])
        return Sized(entry.tasks)


def health_app(tmp_path, backend, preload, **engine_kw):
    register_backend("flaky", backend)
    (tmp_path / "m").mkdir(exist_ok=True)
    catalogue = {
        m: ModelEntry(m, ("text-classification",), "flaky", f"path:{tmp_path / 'm'}")
        for m in ("good/model", "bad/model", "lazy/model")
    }
    settings = EngineSettings(
        allowed_dirs=(tmp_path,), digest_cache=tmp_path / "digests.json", preload=preload, **engine_kw
    )
    engine = Engine(catalogue, settings)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine, ServerSettings(api_key="sekret"))),
        base_url="http://inferd",
    )
    return engine, client


async def test_a_failed_preload_makes_health_503_naming_it_without_a_traceback(tmp_path):
    backend = FlakyBackend()
    backend.fail["bad/model"] = "weights are corrupt\nTraceback (most recent call last):\n  File 'x.py'"
    engine, client = health_app(tmp_path, backend, preload=("good/model", "bad/model"))
    await engine.start()
    async with client:
        r = await client.get("/health")  # no API key: probes carry none
        assert r.status_code == 503
        body = r.json()
        assert body["error_type"] == "unhealthy" and body["models"] == ["bad/model"]
        assert "bad/model" in body["error"] and "weights are corrupt" in body["error"]
        assert "Traceback" not in r.text and "good/model" not in body["error"]

        r = await client.get("/models/bad/model/health", headers=KEY)  # one model's: with the key
        assert r.status_code == 503 and r.json()["error_type"] == "unhealthy"
        assert "weights are corrupt" in r.json()["error"] and "Traceback" not in r.text
        r = await client.get("/models/good/model/health", headers=KEY)  # one model's: with the key
        assert r.status_code == 200 and r.json()["loaded"] is True
        r = await client.get(
            "/models/lazy/model/health", headers=KEY
        )  # one model's: with the key  # never asked for: healthy, not loaded
        assert r.status_code == 200 and r.json()["state"] == "Loadable"
        r = await client.get("/models/no/such-model/health", headers=KEY)  # one model's: with the key
        assert r.status_code == 404 and r.json()["error_type"] == "not_found"
    await engine.close()


async def test_health_recovers_once_a_failed_preload_loads(tmp_path):
    backend = FlakyBackend()
    backend.fail["bad/model"] = "out of memory"
    engine, client = health_app(tmp_path, backend, preload=("bad/model",), retry_failed_after_s=0)
    await engine.start()
    async with client:
        assert (await client.get("/health")).status_code == 503
        backend.fail.clear()  # the operator freed memory; the next request retries the load
        r = await client.post(
            "/models/bad/model", json={"inputs": "x"}, headers={**KEY, "X-Wait-For-Model": "true"}
        )
        assert r.status_code == 200
        assert (await client.get("/health")).json() == {"status": "ok"}
    await engine.close()


async def test_health_is_503_loading_until_the_preloads_are_loaded(tmp_path):
    backend = FlakyBackend()
    backend.gate.clear()
    engine, client = health_app(tmp_path, backend, preload=("good/model",), max_memory_bytes=150)
    starting = asyncio.create_task(engine.start())
    async with client:
        while engine.status("good/model")["state"] != "Loading":
            await asyncio.sleep(0.01)
        r = await client.get("/health")
        assert r.status_code == 503 and r.json()["error_type"] == "model_loading"
        assert r.json()["models"] == ["good/model"] and int(r.headers["retry-after"]) >= 1
        # One model loading is not broken: its own health stays 200.
        r = await client.get("/models/good/model/health", headers=KEY)  # one model's: with the key
        assert r.status_code == 200 and r.json()["state"] == "Loading"
        backend.gate.set()
        await starting
        assert (await client.get("/health")).status_code == 200

        # Past start, a preload loading again (the LRU unloaded it to make room for another model) is no
        # reason to take the server out of the load balancer.
        wait = {**KEY, "X-Wait-For-Model": "true"}
        assert (
            await client.post("/models/lazy/model", json={"inputs": "x"}, headers=wait)
        ).status_code == 200
        assert engine.status("good/model")["state"] == "Loadable"
        backend.gate.clear()
        no_wait = {**KEY, "X-Wait-For-Model": "false"}
        r = await client.post("/models/good/model", json={"inputs": "x"}, headers=no_wait)
        assert r.status_code == 503 and r.json()["error_type"] == "model_loading"
        assert (await client.get("/health")).status_code == 200
        backend.gate.set()
    await engine.close()


# ---- CORS ---------------------------------------------------------------------------------------------------
def preflight(origin: str, headers: str = "authorization,content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


async def test_no_cors_headers_when_no_origin_is_configured(tmp_path):
    async with running(tmp_path, ServerSettings(api_key="sekret")) as client:
        r = await client.options("/models/toy/text", headers=preflight(ORIGIN))
        # No CORS layer: the preflight is one more request without the key.
        assert r.status_code == 401 and "access-control-allow-origin" not in r.headers
        r = await client.post("/models/toy/text", json={"inputs": "x"}, headers={**KEY, "Origin": ORIGIN})
        assert r.status_code == 200
        assert not [h for h in r.headers if h.startswith("access-control-")]


async def test_cors_preflight_needs_no_key_and_answers_expose_the_timing_headers(tmp_path):
    settings = ServerSettings(api_key="sekret", cors_origins=(ORIGIN,))
    async with running(tmp_path, settings) as client:
        sent = "authorization,content-type,x-wait-for-model,x-use-cache,x-stainless-retry-count"
        r = await client.options("/models/toy/text", headers=preflight(ORIGIN, sent))
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        assert {"GET", "POST", "OPTIONS"} <= set(r.headers["access-control-allow-methods"].split(", "))
        assert "x-wait-for-model" in r.headers["access-control-allow-headers"].lower()
        # Another origin, or a header no client sends, is refused (and told nothing).
        r = await client.options("/models/toy/text", headers=preflight("http://evil.example"))
        assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
        r = await client.options("/models/toy/text", headers=preflight(ORIGIN, "x-made-up"))
        assert r.status_code == 400

        r = await client.post("/models/toy/text", json={"inputs": "x"}, headers={**KEY, "Origin": ORIGIN})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        exposed = r.headers["access-control-expose-headers"].lower()
        assert all(
            h in exposed for h in ("x-compute-time", "x-queue-time", "x-inference-time", "retry-after")
        )
        # The key is still required, and the page can read why it was refused.
        r = await client.post("/models/toy/text", json={"inputs": "x"}, headers={"Origin": ORIGIN})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN


async def test_cors_any_origin(tmp_path):
    async with running(tmp_path, ServerSettings(cors_origins=("*",))) as client:
        r = await client.options("/v1/chat/completions", headers=preflight("http://anywhere.example"))
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


# ---- gzip ---------------------------------------------------------------------------------------------------
GZIP = {"Accept-Encoding": "gzip"}
MANY = {"inputs": [f"sentence number {i}" for i in range(300)]}  # ~5 KB of embeddings JSON


async def test_gzip_is_off_by_default(tmp_path):
    async with running(tmp_path) as client:
        r = await client.post("/models/toy/minilm", json=MANY, headers=GZIP)
        assert r.status_code == 200 and len(r.content) > 1024 and "content-encoding" not in r.headers


async def test_gzip_compresses_big_json_only_for_clients_that_accept_it(tmp_path):
    async with running(tmp_path, ServerSettings(gzip=True)) as client:
        r = await client.post("/models/toy/minilm", json=MANY, headers=GZIP)
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.num_bytes_downloaded < len(r.content) / 2 and len(r.json()) == 300
        plain = await client.post("/models/toy/minilm", json=MANY, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == r.json()
        small = await client.post("/models/toy/text", json={"inputs": "x"}, headers=GZIP)
        assert "content-encoding" not in small.headers  # under 1 KB
        noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        png = io.BytesIO()
        Image.fromarray(noise).save(png, format="PNG")
        r = await client.post(
            "/models/toy/vision/pipeline/image-to-image",
            content=png.getvalue(),
            headers={**GZIP, "Content-Type": "image/png"},
        )
        assert r.headers["content-type"] == "image/png" and len(r.content) > 1024
        assert "content-encoding" not in r.headers  # compressed already


async def test_gzip_leaves_token_streams_alone_on_uvicorn(tmp_path):
    tokens = 8
    async with serving(tmp_path, ServerSettings(gzip=True)) as (url, backend):
        async with httpx.AsyncClient(base_url=url, timeout=10, headers=GZIP) as client:
            body = {"inputs": "hi", "parameters": {"max_new_tokens": tokens}}
            texts, generated_at_first = [], None
            async with client.stream("POST", "/models/toy/slow-llm/generate_stream", json=body) as r:
                assert r.status_code == 200 and "content-encoding" not in r.headers
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        if generated_at_first is None:
                            generated_at_first = backend.models["toy/slow-llm"].streamed
                        texts.append(json.loads(line[5:])["token"]["text"])
    assert texts == [f" w{i}" for i in range(tokens)]
    assert generated_at_first is not None and generated_at_first < tokens  # not held back until the end


async def test_gzip_never_compresses_a_streamed_body_of_any_type():
    # Starlette's own GZipMiddleware compresses a streamed JSON body; ours passes every stream through.
    async def chunks():
        for i in range(4):
            yield json.dumps({"chunk": i, "pad": "x" * 2000}).encode() + b"\n"

    async def stream(request):
        return StreamingResponse(chunks(), media_type="application/json")

    app = Starlette(routes=[Route("/", stream)], middleware=[Middleware(GZipUnlessStreaming)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get("/", headers=GZIP)
    assert "content-encoding" not in r.headers and len(r.content.splitlines()) == 4


# ---- config and flags ---------------------------------------------------------------------------------------
def write(tmp_path, text):
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_config_and_flags_set_cors_and_gzip(tmp_path):
    path = write(tmp_path, '[server]\ncors_origins = ["http://localhost:3000", "*"]\ngzip = true\n')
    settings = server_settings(load_config(path, {}).server)
    assert settings.cors_origins == ("http://localhost:3000", "*") and settings.gzip is True
    args = build_parser().parse_args(
        ["serve", "--config", str(path), "--cors-origin", ORIGIN, "--cors-origin", "https://b.example"]
        + ["--no-gzip"]
    )
    settings = server_settings(serve_values(args))  # flags override the file
    assert settings.cors_origins == (ORIGIN, "https://b.example") and settings.gzip is False
    assert ServerSettings().cors_origins == () and ServerSettings().gzip is False


@pytest.mark.parametrize(
    "text, words",
    [
        ('[server]\ncors_origins = "http://localhost:3000"\n', "`cors_origins` must be list"),
        ("[server]\ncors_origins = [3000]\n", "must be a list of origins"),
        ('[server]\ncors_origins = ["http://localhost:3000/"]\n', "is not a CORS origin"),
        ('[server]\ngzip = "yes"\n', "`gzip` must be bool"),
    ],
)
def test_bad_cors_or_gzip_config_names_the_key(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words.replace("`", ".")):
        load_config(write(tmp_path, text), {})


def test_bad_cors_flag_stops_serve_with_the_fix(capsys):
    assert main(["serve", "--cors-origin", "localhost:3000"]) == 2
    assert "--cors-origin: 'localhost:3000' is not a CORS origin" in capsys.readouterr().err


def test_ray_builder_passes_cors_and_gzip_as_flags():
    ray_serve = pytest.importorskip("inferd.server.ray_serve", reason="Ray is not installed")
    argv = ray_serve._serve_argv({"cors_origin": "http://a.example,http://b.example", "gzip": True})
    args = build_parser().parse_args(["serve", *argv])
    assert args.cors_origins == ["http://a.example", "http://b.example"] and args.gzip is True
    assert build_parser().parse_args(["serve", *ray_serve._serve_argv({"gzip": "false"})]).gzip is False
