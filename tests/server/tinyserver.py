"""The real app on uvicorn (in a background thread) over a few tiny random transformers models, for tests that
need real model outputs behind real clients (the openai SDK is sync and needs a real socket)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("INFERD_TORCH_THREADS", "1")

import uvicorn  # noqa: E402

from inferd.catalogue import ModelEntry  # noqa: E402
from inferd.server.app import create_app  # noqa: E402
from inferd.server.engine import Engine, EngineSettings  # noqa: E402
from inferd.server.settings import ServerSettings  # noqa: E402

# model id -> (tiny model folder's task, tasks served, tasks it is the server's default for)
Models = Mapping[str, tuple[str, tuple[str, ...], tuple[str, ...]]]
# The tiny folders that are not transformers models: the backend that loads them.
BACKEND_OF_FOLDER = {"text-to-image": "diffusers"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tiny_server(
    tiny_models, state_dir: Path, models: Models, options: Mapping[str, Mapping[str, object]] | None = None
) -> Iterator[str]:
    """The base URL of a server preloading `models`, built from `tiny_models` folders (`options` by model id)."""
    catalogue = {
        model_id: ModelEntry(
            model_id,
            tasks,
            BACKEND_OF_FOLDER.get(folder, "transformers"),
            f"path:{tiny_models(folder)}",
            default_for=defaults,
            options=dict((options or {}).get(model_id, {})),
        )
        for model_id, (folder, tasks, defaults) in models.items()
    }
    settings = EngineSettings(
        allowed_dirs=(tiny_models.root,), digest_cache=state_dir / "digests.json", preload=tuple(models)
    )
    with serve_app(create_app(Engine(catalogue, settings), ServerSettings())) as url:
        yield url


@contextmanager
def serve_app(app) -> Iterator[str]:
    """The base URL of `app` on uvicorn, in a background thread, on a free port of 127.0.0.1."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serve_defaults(tasks: set[str], state: Path) -> Iterator[str]:
    """The real app serving the default models of `tasks` (loaded before the first request), its base URL."""
    from inferd.catalogue.defaults import default_catalogue

    chosen = {m: e for m, e in default_catalogue().items() if tasks & set(e.default_for)}
    engine = Engine(chosen, EngineSettings(digest_cache=state / "digests.json", preload=tuple(chosen)))
    with serve_app(create_app(engine, ServerSettings())) as url:
        yield url
