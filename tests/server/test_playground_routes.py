"""The playground's routes, without a browser: the page and its files are public and same-origin only,
`--no-playground` removes them, and /api/tasks carries the registry's parameters the widgets are built from."""

from __future__ import annotations

import re

import pytest
from appkit import running

from inferd.cli import build_parser
from inferd.cli_serve import serve_values
from inferd.server.config import server_settings
from inferd.server.playground import ASSETS, PUBLIC_PATHS
from inferd.server.settings import ServerSettings
from inferd.tasks import TASKS


async def test_the_page_and_its_files_are_served_with_a_same_origin_policy(tmp_path):
    async with running(tmp_path) as client:
        for path in ("/", "/playground"):
            page = await client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in page.headers["content-security-policy"]
            assert '<meta name="inferd-api-key" content="optional">' in page.text
            # every file the page loads is one of ours, from this server
            for ref in re.findall(r'(?:src|href)="([^"]+)"', page.text):
                assert ref.startswith(("/playground/", "#", "data:")), ref
        for name, media_type in ASSETS.items():
            r = await client.get(f"/playground/{name}")
            assert r.status_code == 200 and r.headers["content-type"].startswith(media_type), name
            text = r.text.replace("http://www.w3.org/2000/svg", "")  # SVG's namespace: a name, not a request
            assert "http://" not in text and "https://" not in text, f"{name} names another host"
        missing = await client.get("/playground/secrets.txt")
        assert missing.status_code == 404 and missing.json()["error_type"] == "not_found"
        # POST / still reaches the only-model route, not the page
        assert (await client.post("/", json={"inputs": "x"})).status_code == 404


async def test_with_an_api_key_the_page_asks_for_it_and_stays_public(tmp_path):
    async with running(tmp_path, ServerSettings(api_key="sekret")) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert '<meta name="inferd-api-key" content="required">' in page.text
        assert "sekret" not in page.text
        assert (await client.get("/playground/app.js")).status_code == 200
        assert (await client.get("/v1/models")).status_code == 401  # what the page checks a key with


async def test_no_playground_removes_the_page(tmp_path):
    async with running(tmp_path, ServerSettings(playground=False)) as client:
        for path in ("/", "/playground", "/playground/app.js"):
            r = await client.get(path)
            if path == "/":  # / still takes POST (the default model), so GET there is a 405
                assert r.status_code == 405 and r.json()["error"] == "GET is not allowed on /: use POST."
            else:
                assert r.status_code == 404 and r.json()["error"] == f"No route GET {path}.", path


def test_no_playground_flag_and_config_key():
    args = build_parser().parse_args(["serve", "--no-playground"])
    assert server_settings(serve_values(args)).playground is False
    assert server_settings(serve_values(build_parser().parse_args(["serve"]))).playground is True


def test_public_paths_are_the_routes():
    from inferd.server.app import routes

    paths = [r.path for r in routes(ServerSettings())]
    assert all(p in paths for p in PUBLIC_PATHS)
    assert not any(p in [r.path for r in routes(ServerSettings(playground=False))] for p in PUBLIC_PATHS[1:])


@pytest.mark.parametrize("task", ["text-classification", "zero-shot-classification", "object-detection"])
async def test_api_tasks_carries_the_registry_parameters(tmp_path, task):
    async with running(tmp_path) as client:
        info = (await client.get("/api/tasks")).json()[task]
    registry = TASKS[task]
    assert info["input_kind"] == registry.input_kind.value
    assert [p["name"] for p in info["parameters"]] == [p.name for p in registry.parameters]
    first, schema = info["parameters"][0], registry.parameters[0].json_schema()
    # The registry's schema with "or null" folded away, so that `type` picks the form control.
    plain = next(v for v in schema.get("anyOf", [schema]) if v.get("type") != "null")
    plain = next(v for v in plain.get("anyOf", [plain]) if v.get("type") != "null")
    assert first["name"] == registry.parameters[0].name
    assert first["required"] is registry.parameters[0].required
    assert first["description"] == schema["description"]
    assert {k: v for k, v in first.items() if k not in ("name", "required", "description")} == plain
    assert info["example_input"] == registry.example_input


def test_the_installed_package_ships_every_file_the_page_loads():
    """The page's files are package data: read through importlib.resources (as the server reads them), every
    file the page and its modules load is there and listed in ASSETS, which the server serves and nothing else."""
    from importlib import metadata, resources

    folder = resources.files("inferd.server.playground")
    html = folder.joinpath("index.html").read_text(encoding="utf-8")
    loaded = set(re.findall(r'(?:src|href)="/playground/([^"]+)"', html))
    for name in list(loaded) + list(ASSETS):
        text = folder.joinpath(name).read_text(encoding="utf-8")  # FileNotFoundError: not shipped
        if name.endswith(".js"):
            loaded |= set(re.findall(r'from\s+"\./([^"]+)"', text))
            loaded |= set(re.findall(r'import\(\s*"\./([^"]+)"\s*\)', text))
    assert loaded and loaded <= set(ASSETS), loaded - set(ASSETS)
    on_disk = {p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith((".py", ".pyc"))}
    assert on_disk == set(ASSETS) | {"index.html"}, on_disk ^ (set(ASSETS) | {"index.html"})
    # A wheel install lists its files; an editable one (this checkout) reads them from src/ (just checked).
    record = {str(f) for f in metadata.files("inferd") or ()}
    if any(f.startswith("inferd/server/") for f in record):
        for name in [*ASSETS, "index.html"]:
            assert f"inferd/server/playground/{name}" in record, name
