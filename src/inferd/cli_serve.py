"""`inferd serve`'s flags, and the [server] values they make with the config file and INFERD_API_KEY.

Both ways of serving read them: `inferd serve` (cli.py) and Ray's application builder (server/ray_serve.py), which
parses its `key=value` arguments as these flags. It sits below both, so neither imports the other.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def add_serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8080)")
    p.add_argument("--config", type=Path, help="TOML file adding/overriding models and [server] settings")
    p.add_argument(
        "--preload",
        nargs="*",
        default=None,
        metavar="MODEL",
        help="models to load before the port opens (`all`: every model of the catalogue)",
    )
    p.add_argument(
        "--preload-defaults",
        action="store_true",
        default=None,
        help="load every task's default model before the port opens, as TGI does",
    )
    p.add_argument("--max-memory", help="unload least recently used models above this (e.g. 4GB)")
    p.add_argument(
        "--api-key",
        help="require `Authorization: Bearer <key>` on every route but /health (env INFERD_API_KEY; not empty)",
    )
    p.add_argument("--max-json-bytes", help="body limit for JSON/text requests (default 2MB)")
    p.add_argument("--max-media-bytes", help="body limit for image/audio requests (default 50MB)")
    p.add_argument(
        "--max-client-batch-size",
        type=int,
        help="inputs one request may carry on any route, as /info reports it (2048)",
    )
    p.add_argument("--max-image-pixels", type=int, help="pixels per input image, width x height (64000000)")
    p.add_argument("--max-image-side", type=int, help="pixels per side of an input image (16384)")
    p.add_argument(
        "--max-image-aspect", type=float, help="longer side / shorter side of an input image (100)"
    )
    p.add_argument("--max-audio-seconds", type=float, help="duration of an input audio file (600)")
    p.add_argument("--request-timeout", type=float, dest="request_timeout_s", help="seconds per request (60)")
    p.add_argument(
        "--max-load-wait",
        type=float,
        dest="max_load_wait_s",
        help="seconds a request waits for its model to load before a 503 with estimated_time (60)",
    )
    p.add_argument("--max-batch-size", type=int, help="largest batch a model runs (32)")
    p.add_argument(
        "--max-batch-tokens",
        type=int,
        help="tokens per batch for models that count them (2048; 0: count items only)",
    )
    p.add_argument("--max-batch-wait-ms", type=float, help="how long a batch waits to fill (0)")
    p.add_argument(
        "--prefetch-batches",
        type=int,
        help="batches formed and queued on a model's thread while one runs, so it goes straight to the next (0)",
    )
    p.add_argument(
        "--max-queue", type=int, dest="max_queue_per_model", help="queued requests per model before 429"
    )
    p.add_argument(
        "--max-streams",
        type=int,
        help="concurrent streams a model decodes together when it can (8; 1: in turn)",
    )
    p.add_argument(
        "--allow-dir", action="append", dest="allowed_dirs", help="folder `path:` models may come from"
    )
    p.add_argument(
        "--no-docs", action="store_false", dest="docs", default=None, help="no Swagger UI at /docs"
    )
    p.add_argument(
        "--no-playground",
        action="store_false",
        dest="playground",
        default=None,
        help="no playground page at / and /playground",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        metavar="ORIGIN",
        help="a web origin allowed to call the server from a browser (repeatable; * for any); default none",
    )
    p.add_argument(
        "--gzip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="gzip JSON and text answers over 1 KB to clients that accept it; streams never (default off)",
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        dest="drain_timeout_s",
        help="on SIGTERM: seconds in-flight requests and streams get to finish; then streams end with a final "
        "error event and requests are answered 503 (30)",
    )
    p.add_argument(
        "--keep-alive-timeout",
        type=float,
        dest="keep_alive_timeout_s",
        help="seconds an idle keep-alive connection stays open (5)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        help="open connections and requests before new ones get 503 (uvicorn's limit_concurrency; 1000)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    # Ray Serve (the `distributed` extra): the same app, one engine per replica, behind Ray's HTTP proxy.
    p.add_argument(
        "--ray",
        action="store_true",
        help="serve through Ray Serve: a local Ray, or the cluster at RAY_ADDRESS (see server/ray_serve.py)",
    )
    p.add_argument(
        "--replicas",
        type=parse_replicas,
        help="with --ray: engine replicas, or `auto` to scale 1..4 with load (default 1)",
    )


def parse_replicas(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of replicas >= 1 or `auto`")
    return int(text)


# Flags that choose how to run, not what the server does.
_NOT_SERVER_VALUES = ("command", "config", "log_level", "ray", "replicas", "preload_defaults")


def serve_values(args: argparse.Namespace) -> dict[str, Any]:
    """[server] values: the config file's, overridden by flags and INFERD_API_KEY."""
    from .catalogue.defaults import default_catalogue
    from .server.config import (
        check_api_key,
        check_not_negative,
        cors_origins,
        load_config,
        parse_size,
        preload_models,
    )

    config = load_config(args.config, default_catalogue())
    values = dict(config.server)
    if (
        "INFERD_API_KEY" in os.environ
    ):  # set but empty is refused too: often a variable that was meant to hold it
        values["api_key"] = check_api_key(os.environ["INFERD_API_KEY"], "INFERD_API_KEY")
    flags = {k: v for k, v in vars(args).items() if v is not None and k not in _NOT_SERVER_VALUES}
    if "api_key" in flags:
        check_api_key(flags["api_key"], "--api-key")
    for key, value in flags.items():
        check_not_negative(key, value, "flags")
    for key in ("max_memory", "max_json_bytes", "max_media_bytes"):
        if key in flags:
            flags[key] = parse_size(flags[key])
    if "cors_origins" in flags:
        flags["cors_origins"] = cors_origins(flags["cors_origins"], "--cors-origin")
    if "allowed_dirs" in flags:
        flags["allowed_dirs"] = [str(Path(d).resolve()) for d in flags["allowed_dirs"]]
    values.update(flags)
    values["catalogue"], values["config_dir"] = config.catalogue, config.folder
    values["preload"] = preload_models(
        values.get("preload", ()), config.catalogue, defaults=bool(args.preload_defaults)
    )
    return values


def parse_serve_args(argv: Sequence[str]) -> argparse.Namespace:
    """`inferd serve`'s flags alone (argparse exits with 2 on a usage error, as the command does)."""
    parser = argparse.ArgumentParser(prog="inferd serve")
    add_serve_args(parser)
    return parser.parse_args(argv)
