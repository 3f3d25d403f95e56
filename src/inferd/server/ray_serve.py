"""inferd on Ray Serve: the same app and engine, one per replica, behind Ray's HTTP proxy.

    serve run inferd.server.ray_serve:build_app config=models.toml replicas=2 max_memory=4GB
    inferd serve --ray --replicas 2 --config models.toml          # the same, from our CLI

Each replica is a Ray actor running `create_app` over its own Engine: its own model registry, LRU bounded by
`max_memory`, batchers and model threads. Ray adds the proxy, placement across nodes, replica restarts and
autoscaling (spec/servers.md §4.3, §6.2). This module imports ray; nothing else in inferd imports it, so
`import inferd` and a plain `inferd serve` never pay for it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from ray import serve
from ray.serve import Application, Deployment
from ray.serve.config import BackpressureConfig

from .engine import EngineSettings

APP_NAME = "inferd"
REPLICA_HEADER = "x-inferd-replica"  # which replica answered: lets a client see the load spread
# build_app's own arguments; every other one is an `inferd serve` flag (see _serve_argv).
RAY_ARGS = ("replicas", "max_replicas", "max_ongoing_requests", "max_queued_requests", "num_cpus")


class _ReplicaHeader:
    """ASGI middleware: names the replica on every HTTP response (nothing else changes)."""

    def __init__(self, app: Any, replica: str) -> None:
        self.app = app
        self.replica = replica.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (REPLICA_HEADER.encode(), self.replica)]
            await send(message)

        await self.app(scope, receive, named)


# No app given to ingress: Ray calls __serve_build_asgi_app__ on each replica after __init__, so the engine
# (and its models) are built there, not in the driver, then runs the app's lifespan (engine start: preload).
@serve.ingress()
class InferdReplica:
    def __init__(self, values: dict[str, Any]) -> None:
        # As in `inferd serve`: before any runtime loads OpenMP, so idle workers sleep instead of spinning.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.values = values

    def __serve_build_asgi_app__(self) -> Any:
        from .app import create_app
        from .config import engine_settings, server_settings
        from .engine import Engine

        app = create_app(
            Engine(self.values["catalogue"], engine_settings(self.values)), server_settings(self.values)
        )
        app.add_middleware(_ReplicaHeader, replica=serve.get_replica_context().replica_tag)
        return app


def inferd_app(values: Mapping[str, Any], **options: Any) -> Application:
    """The Ray Serve application over `inferd serve`'s values (cli_serve.serve_values): `serve.run` it."""
    return inferd_deployment(values, **options).bind(dict(values))


def inferd_deployment(
    values: Mapping[str, Any],
    *,
    replicas: int | str = 1,
    max_replicas: int = 4,
    max_ongoing_requests: int | None = None,
    max_queued_requests: int | None = None,
    num_cpus: float = 1.0,
) -> Deployment:
    batch = int(values.get("max_batch_size", EngineSettings.max_batch_size))
    options: dict[str, Any] = {
        "name": APP_NAME,
        # Ray's default (5) would starve our batcher: a replica only fills a batch if it is sent one. Two
        # batches' worth keeps one running while the next one forms.
        "max_ongoing_requests": max_ongoing_requests or 2 * batch,
        # Ray's queue in front of the replicas is unbounded by default (spec §4.3); bound it like ours, and
        # answer over it as the engine does: 429 with Retry-After.
        "max_queued_requests": max_queued_requests
        or int(values.get("max_queue_per_model", EngineSettings.max_queue_per_model)),
        "backpressure_config": BackpressureConfig(status_code=429, retry_after_s=1),
        "ray_actor_options": {"num_cpus": num_cpus},
    }
    if replicas == "auto":
        # Ray's target of 2 ongoing requests suits one-at-a-time models; a batching replica is busy only when
        # a full batch is waiting, so scale on that. max_replicas bounds what a burst can take from the cluster.
        options["num_replicas"] = "auto"
        options["autoscaling_config"] = {
            "min_replicas": 1,
            "max_replicas": max_replicas,
            "target_ongoing_requests": batch,
        }
    else:
        options["num_replicas"] = int(replicas)
    return serve.deployment(**options)(InferdReplica)


def build_app(args: dict[str, Any]) -> Application:
    """Ray's application-builder entry point (`serve run module:build_app key=value ...`, `serve build`,
    `serve deploy`). Keys: RAY_ARGS, and any `inferd serve` flag without its dashes (`config=models.toml`,
    `max_memory=4GB`, `preload=a,b`; lists comma-separated). Runs in the driver: the config file is read
    here and its catalogue travels to the replicas, so only model files need to exist on every node."""
    values, options = builder_args(args)
    return inferd_app(values, **options)


def builder_args(args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(`inferd serve` values, inferd_deployment options) from build_app's arguments; ValueError if wrong."""
    from ..cli_serve import parse_replicas, parse_serve_args, serve_values

    ray_args = {k: v for k, v in args.items() if k in RAY_ARGS}
    flags = {k: v for k, v in args.items() if k not in RAY_ARGS}
    for key in ("host", "port", "ray"):
        if key in flags:
            raise ValueError(f"`{key}` is Ray's here: set the proxy's address with `serve run`/http_options.")
    try:
        parsed = parse_serve_args(_serve_argv(flags))
        options: dict[str, Any] = {"replicas": parse_replicas(str(ray_args.pop("replicas", 1)))}
    except (SystemExit, argparse.ArgumentTypeError) as exc:  # argparse has printed what was wrong
        raise ValueError(f"inferd: bad application arguments {dict(args)}: {exc}") from None
    for key, kind in (("max_replicas", int), ("max_ongoing_requests", int), ("max_queued_requests", int)):
        if key in ray_args:
            options[key] = kind(ray_args[key])
    if "num_cpus" in ray_args:
        options["num_cpus"] = float(ray_args["num_cpus"])
    values = serve_values(parsed)
    return values, options


def _serve_argv(flags: Mapping[str, Any]) -> list[str]:
    """`inferd serve` arguments from builder keys: `max_memory="4GB"` -> `--max-memory=4GB`."""
    argv: list[str] = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        items = [str(v) for v in value] if isinstance(value, list) else str(value).split(",")
        if flag in ("--no-docs", "--no-playground", "--preload-defaults"):
            argv += [flag] if str(value).lower() in ("1", "true", "yes") else []
        elif flag == "--gzip":
            argv += [flag if str(value).lower() in ("1", "true", "yes") else "--no-gzip"]
        elif flag == "--preload":
            argv += [flag, *items]
        elif flag in ("--allow-dir", "--cors-origin"):
            argv += [f"{flag}={item}" for item in items]
        else:
            argv.append(f"{flag}={value}")
    return argv


def run_blocking(
    values: Mapping[str, Any], *, replicas: int | str, host: str, port: int, log_level: str = "info"
) -> int:
    """`inferd serve --ray`: connect to Ray as `serve run` does (RAY_ADDRESS, else a cluster started on this
    machine with `ray start`, else a new local one), deploy, and block until Ctrl-C or SIGTERM."""
    import ray

    ray.init(namespace="serve")
    # A SIGTERM (a process manager, the bench) must also reach the finally below: it deletes the app, so each
    # replica's lifespan closes its engine, and stops a Ray this process started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(
            inferd_app(values, replicas=replicas),
            name=APP_NAME,
            route_prefix="/",
            logging_config={"log_level": log_level.upper()},
        )
        print(f"inferd on Ray Serve: http://{host}:{port}, replicas: {replicas}; Ctrl-C stops", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        # Bounded: a signal sent to the whole process group (a terminal's Ctrl-C, `kill -- -pgid`) also stops
        # the Ray this process started, and the delete would then wait for a controller that is gone.
        deleting = threading.Thread(target=_delete_quietly, daemon=True)
        deleting.start()
        deleting.join(timeout=30)
        ray.shutdown()
    return 0


def _delete_quietly() -> None:
    with contextlib.suppress(Exception):
        serve.delete(APP_NAME)
