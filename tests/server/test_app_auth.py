"""The one auth policy (issue 10, row 14): with an API key, only /health answers without it.

The first test walks every route the app has (app.routes, so a route added later is covered without editing
this file), with every method it takes, and asserts 401 without the key or with a wrong one, and not 401 with it.
"""

from __future__ import annotations

import re

import httpx
import pytest
from appkit import make_app, running
from starlette.routing import Route

from inferd.catalogue import ModelEntry
from inferd.cli import main
from inferd.server import playground
from inferd.server.app import create_app
from inferd.server.engine import Engine, EngineSettings
from inferd.server.limits import PUBLIC_PATHS
from inferd.server.settings import ServerSettings

KEY = {"Authorization": "Bearer sekret"}
PARAMS = {"model_id": "toy/text", "task": "text-classification", "framework": "all", "asset": "app.js"}
# The playground page and its files: static, no data; the page asks for the key before it calls anything.
PUBLIC = PUBLIC_PATHS | playground.public_paths()


def concrete(path: str) -> str:
    """/models/{model_id:path}/pipeline/{task} -> /models/toy/text/pipeline/text-classification."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS[m.group(1)], path)


def every_call(app) -> list[tuple[str, str]]:
    calls = []
    for route in app.routes:
        assert isinstance(route, Route), f"a route the walk does not know how to call: {route!r}"
        for method in sorted(route.methods or ()):
            calls.append((method, concrete(route.path)))
    return calls


async def test_every_route_needs_the_key_but_health(tmp_path):
    app, engine, _ = make_app(tmp_path, ServerSettings(api_key="sekret"))
    calls = every_call(app)
    assert ("GET", "/docs") in calls and ("POST", "/v1/chat/completions") in calls  # the walk sees them all
    await engine.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            for method, path in calls:
                body = {"json": {"inputs": "I love it"}} if method == "POST" else {}
                refused = await client.request(method, path, **body)
                if path in PUBLIC:
                    assert refused.status_code != 401, (method, path)
                    continue
                assert refused.status_code == 401, (method, path, refused.status_code)
                assert refused.headers["www-authenticate"] == "Bearer"
                if method != "HEAD":  # a HEAD answer has no body
                    assert refused.json()["error_type"] == "unauthorized", (method, path)
                for wrong in ("Bearer sekret-not", "Bearer sekre", "Basic sekret", "sekret"):
                    guessed = await client.request(method, path, headers={"Authorization": wrong}, **body)
                    assert guessed.status_code == 401, (method, path, wrong)
                answered = await client.request(method, path, headers=KEY, **body)
                assert answered.status_code != 401, (method, path)
    finally:
        await engine.close()
    assert PUBLIC_PATHS == {"/health"}
    assert playground.public_paths() >= {"/", "/playground", "/playground/app.js"}


async def test_no_key_tells_nothing_not_even_which_routes_exist(tmp_path):
    async with running(tmp_path, ServerSettings(api_key="sekret")) as client:
        for method, path in (
            ("GET", "/no/such/route"),
            ("DELETE", "/models/toy/text"),
            ("OPTIONS", "/info"),
            ("GET", "/playground/secrets.json"),  # only the page's own files are public
        ):
            assert (await client.request(method, path)).status_code == 401, path
        # The OpenAI routes answer in OpenAI's envelope, which the openai SDK reads.
        r = await client.post("/v1/chat/completions", json={"messages": []})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = await client.post(
            "/models/toy/text", json={"inputs": "x"}, headers={"Authorization": "Bearer no"}
        )
        assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"
        r = await client.post(
            "/models/toy/text", json={"inputs": "x"}, headers={"Authorization": "bearer sekret"}
        )
        assert r.status_code == 200  # the scheme is case-insensitive, as in TGI


async def test_both_model_lists_need_the_key_and_agree(tmp_path):
    async with running(tmp_path, ServerSettings(api_key="sekret")) as client:
        assert (await client.get("/v1/models")).status_code == 401
        assert (await client.get("/api/models")).status_code == 401
        openai_ids = [m["id"] for m in (await client.get("/v1/models", headers=KEY)).json()["data"]]
        hub_ids = [m["id"] for m in (await client.get("/api/models", headers=KEY)).json()]
        assert openai_ids == hub_ids and "toy/text" in hub_ids


async def test_load_errors_show_clients_no_folder(tmp_path):
    outside = tmp_path / "elsewhere" / "weights"
    outside.mkdir(parents=True)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    entry = ModelEntry("bad/outside", ("text-classification",), "toy", f"path:{outside}")
    engine = Engine({entry.model_id: entry}, EngineSettings(allowed_dirs=(allowed,)))
    app = create_app(engine, ServerSettings())
    await engine.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            answers = [
                await client.post(
                    "/models/bad/outside", json={"inputs": "x"}, headers={"X-Wait-For-Model": "1"}
                ),
                await client.get("/status/bad/outside"),
                await client.get("/models/bad/outside"),
                await client.get("/models/bad/outside/health"),
            ]
    finally:
        await engine.close()
    print([a.text for a in answers])
    assert answers[0].status_code == 500
    assert answers[1].json()["state"] == "Failed" and answers[3].status_code == 503
    assert "outside the allowed folders" in answers[1].json()["error"]
    for answer in answers[1:]:
        assert str(tmp_path) not in answer.text and "<path>" in answer.text, answer.text
    # The operator still reads the whole message in-process (and in the log).
    assert str(allowed) in str(engine.registry.slots["bad/outside"].error)


@pytest.mark.parametrize(
    ("argv", "env", "config", "where"),
    [
        (["--api-key", ""], {}, None, "--api-key"),
        (["--api-key", "  "], {}, None, "--api-key"),
        ([], {"INFERD_API_KEY": ""}, None, "INFERD_API_KEY"),
        ([], {}, 'api_key = ""', "`api_key`"),
    ],
)
def test_an_empty_api_key_is_refused_at_start(tmp_path, monkeypatch, capsys, argv, env, config, where):
    monkeypatch.delenv("INFERD_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if config is not None:
        (tmp_path / "models.toml").write_text(f"[server]\n{config}\n")
        argv = [*argv, "--config", str(tmp_path / "models.toml")]
    # A bad size after it: were the key let through, serve would stop there (with another message), not serve.
    assert main(["serve", *argv, "--max-memory", "lots"]) == 2
    err = capsys.readouterr().err
    assert "the API key is empty" in err and where in err
