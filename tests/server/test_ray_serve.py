"""inferd on a real local Ray Serve: 2 replicas over a tiny transformers model, called over HTTP through Ray's
proxy by inferd's and huggingface_hub's clients; every answer must equal the plain in-process server's."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'inferd[distributed]'")
pytest.importorskip("transformers", reason="the tiny test model needs transformers")

from appkit import free_port  # noqa: E402
from huggingface_hub import InferenceClient as HfClient  # noqa: E402
from ray import serve  # noqa: E402

from inferd import InferenceClient  # noqa: E402
from inferd.cli import build_parser  # noqa: E402
from inferd.cli_serve import serve_values  # noqa: E402
from inferd.errors import BadRequestError  # noqa: E402
from inferd.server.app import create_app  # noqa: E402
from inferd.server.config import engine_settings, server_settings  # noqa: E402
from inferd.server.engine import Engine  # noqa: E402
from inferd.server.ray_serve import (  # noqa: E402
    APP_NAME,
    REPLICA_HEADER,
    build_app,
    builder_args,
    inferd_deployment,
)

MODEL = "tiny/text-classification"
TEXTS = ("I like you", "I love you. The goal of life is happiness.", "Today is a sunny day.")
BAD = [  # (path, JSON body): what was sent wrong, answered by our error contract
    (f"/models/{MODEL}", {"inputs": "x", "parameters": {"top_k": 0}}),
    ("/models/nobody/nothing", {"inputs": "x"}),
]


@pytest.fixture(scope="module")
def config(tiny_models, tmp_path_factory):
    """A models.toml for `inferd serve --config` with one tiny model, preloaded."""
    folder = tiny_models("text-classification")
    path = tmp_path_factory.mktemp("ray-serve") / "models.toml"
    path.write_text(
        f'[server]\npreload = ["{MODEL}"]\nallowed_dirs = ["{tiny_models.root}"]\n\n'
        f'[models."{MODEL}"]\ntasks = ["text-classification"]\nbackend = "transformers"\n'
        f'source = "path:{folder}"\n'
    )
    return path


@pytest.fixture(scope="module")
def values(config):
    """What `inferd serve --config models.toml` serves from."""
    return serve_values(build_parser().parse_args(["serve", "--config", str(config)]))


@pytest.fixture(scope="module")
def expected(values):
    """The plain server's answers (in process, no Ray): [(status, JSON)] for TEXTS then BAD."""

    async def ask():
        engine = Engine(values["catalogue"], engine_settings(values))
        app = create_app(engine, server_settings(values))
        await engine.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
                calls = [(f"/models/{MODEL}", {"inputs": t, "parameters": {"top_k": 2}}) for t in TEXTS]
                answers = [await c.post(path, json=body) for path, body in [*calls, *BAD]]
                return [(r.status_code, r.json()) for r in answers]
        finally:
            await engine.close()

    return asyncio.run(ask())


@pytest.fixture(scope="module")
def ray_url(config):
    """`serve run inferd.server.ray_serve:build_app config=models.toml replicas=2`, in process, on a fresh local
    Ray (never one at RAY_ADDRESS); Ray stops after the module."""
    port = free_port()
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        namespace="serve",
        # Replicas are new processes: one torch thread each, as the other server tests use, on 2 cores.
        runtime_env={"env_vars": {"INFERD_TORCH_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}},
    )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        app = build_app({"config": str(config), "replicas": "2", "num_cpus": "0.5"})
        serve.run(app, name=APP_NAME, route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_both_clients_get_the_plain_servers_answers(ray_url, expected):
    ours = InferenceClient(base_url=ray_url)
    hf = HfClient(model=f"{ray_url}/models/{MODEL}")
    for text, (status, body) in zip(TEXTS, expected, strict=False):
        assert status == 200
        [want] = body  # the wire shape of one text: [[{label, score}, ...]]
        got_ours = ours.text_classification(text, model=MODEL, top_k=2)
        got_hf = hf.text_classification(text, top_k=2)
        for got in (got_ours, [{"label": x.label, "score": x.score} for x in got_hf]):
            assert [x["label"] for x in got] == [x["label"] for x in want]
            assert [x["score"] for x in got] == pytest.approx([x["score"] for x in want], abs=1e-6)


def test_bad_input_gets_our_error_through_the_proxy(ray_url, expected):
    for (path, body), (status, want) in zip(BAD, expected[len(TEXTS) :], strict=True):
        r = httpx.post(ray_url + path, json=body, timeout=30)
        assert (r.status_code, r.json()) == (status, want)
        assert 400 <= status < 500 and set(want) == {"error", "error_type"}
    with pytest.raises(BadRequestError, match="top_k"):
        InferenceClient(base_url=ray_url).text_classification("x", model=MODEL, top_k=0)


def test_requests_reach_both_replicas(ray_url):
    def replica(i: int) -> str:
        r = httpx.post(f"{ray_url}/models/{MODEL}", json={"inputs": TEXTS[i % len(TEXTS)]}, timeout=30)
        assert r.status_code == 200
        return r.headers[REPLICA_HEADER]

    # Concurrent: Ray routes each request to the less busy of two replicas it samples.
    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(replica, range(48)))
    assert len(seen) == 2, seen


def test_builder_arguments_are_inferd_serve_flags(config):
    args = {
        "config": str(config),
        "max_memory": "1GB",
        "max_batch_size": 8,
        "replicas": "3",
        "num_cpus": "0.5",
    }
    values, options = builder_args(args)
    assert values["max_memory"] == 10**9 and values["preload"] == [MODEL]
    deployment = inferd_deployment(values, **options)
    assert deployment.num_replicas == 3 and deployment.ray_actor_options == {"num_cpus": 0.5}
    # Two batches in flight per replica, and Ray's queue bounded like the engine's.
    assert (deployment.max_ongoing_requests, deployment.max_queued_requests) == (16, 256)
    with pytest.raises(ValueError, match="bad application arguments"):
        builder_args({"config": str(config), "max_memroy": "1GB"})
    with pytest.raises(ValueError, match="replicas"):
        builder_args({"config": str(config), "replicas": "0"})
