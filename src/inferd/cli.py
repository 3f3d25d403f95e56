"""The `inferd` command: a small dict of subcommands, each adding its flags and running.

    inferd serve --port 8080 --config models.toml --preload distilbert-base-uncased-finetuned-sst-2-english
    inferd run text-classification "I love this movie" --top-k 1
    inferd batch text-classification reviews.txt --output results.jsonl --concurrency 8

Add a subcommand by writing `_<name>_args(parser)` and `_<name>(args) -> int` and one line in SUBCOMMANDS.
Nothing heavy is imported until a subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# (one-line summary, add its flags, run it -> exit code)
Subcommand = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8080)")
    p.add_argument("--config", type=Path, help="TOML file adding/overriding models and [server] settings")
    p.add_argument("--preload", nargs="*", default=None, metavar="MODEL", help="models to load at start")
    p.add_argument("--max-memory", help="unload least recently used models above this (e.g. 4GB)")
    p.add_argument(
        "--api-key", help="require `Authorization: Bearer <key>` on inference routes (env INFERD_API_KEY)"
    )
    p.add_argument("--max-json-bytes", help="body limit for JSON/text requests (default 2MB)")
    p.add_argument("--max-media-bytes", help="body limit for image/audio requests (default 50MB)")
    p.add_argument("--request-timeout", type=float, dest="request_timeout_s", help="seconds per request (60)")
    p.add_argument("--max-batch-size", type=int, help="largest batch a model runs (32)")
    p.add_argument(
        "--max-batch-tokens",
        type=int,
        help="tokens per batch for models that count them (2048; 0: count items only)",
    )
    p.add_argument("--max-batch-wait-ms", type=float, help="how long a batch waits to fill (0)")
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
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    # Ray Serve (the `distributed` extra): the same app, one engine per replica, behind Ray's HTTP proxy.
    p.add_argument(
        "--ray",
        action="store_true",
        help="serve through Ray Serve: a local Ray, or the cluster at RAY_ADDRESS (see server/ray_serve.py)",
    )
    p.add_argument(
        "--replicas",
        type=_replicas,
        help="with --ray: engine replicas, or `auto` to scale 1..4 with load (default 1)",
    )


def _replicas(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of replicas >= 1 or `auto`")
    return int(text)


# Flags that choose how to run, not what the server does.
_NOT_SERVER_VALUES = ("command", "config", "log_level", "ray", "replicas")


def _serve_values(args: argparse.Namespace) -> dict[str, Any]:
    """[server] values: the config file's, overridden by flags and INFERD_API_KEY."""
    from .catalogue import default_catalogue
    from .server.config import check_not_negative, cors_origins, load_config, parse_size

    config = load_config(args.config, default_catalogue())
    values = dict(config.server)
    if os.environ.get("INFERD_API_KEY"):
        values["api_key"] = os.environ["INFERD_API_KEY"]
    flags = {k: v for k, v in vars(args).items() if v is not None and k not in _NOT_SERVER_VALUES}
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
    return values


def _serve(args: argparse.Namespace) -> int:
    # Before any runtime loads OpenMP: idle workers sleep instead of spinning on the cores the server needs.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .server.config import ConfigError

    try:
        values = _serve_values(args)
    except (ConfigError, ValueError) as exc:
        print(f"inferd serve: {exc}", file=sys.stderr)
        return 2
    unknown = [m for m in values.get("preload", ()) if m not in values["catalogue"]]
    if unknown:
        print(f"inferd serve: --preload names unknown models: {', '.join(unknown)}", file=sys.stderr)
        return 2
    host, port = values.get("host", "127.0.0.1"), values.get("port", 8080)
    if args.ray:
        if importlib.util.find_spec("ray") is None:
            print(
                "inferd serve --ray: Ray is not installed: pip install 'inferd[distributed]'", file=sys.stderr
            )
            return 2
        from .server.ray_serve import run_blocking

        replicas = args.replicas or 1
        return run_blocking(values, replicas=replicas, host=host, port=port, log_level=args.log_level)
    if args.replicas is not None:
        print("inferd serve: --replicas needs --ray (one process serves without Ray)", file=sys.stderr)
        return 2
    import uvicorn

    from .server.app import create_app
    from .server.config import engine_settings, server_settings
    from .server.engine import Engine

    app = create_app(Engine(values["catalogue"], engine_settings(values)), server_settings(values))
    uvicorn.run(app, host=host, port=port, log_level=args.log_level, timeout_graceful_shutdown=30)
    return 0


def _run_args(p: argparse.ArgumentParser) -> None:
    from .cli_run import add_run_args

    add_run_args(p)


def _run(args: argparse.Namespace) -> int:
    from .cli_run import run

    return run(args)


def _batch_args(p: argparse.ArgumentParser) -> None:
    from .cli_batch import add_batch_args

    add_batch_args(p)


def _batch(args: argparse.Namespace) -> int:
    from .cli_batch import batch

    return batch(args)


SUBCOMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "serve": ("run the local multi-model inference server", _serve_args, _serve),
    "run": ("run one task on one input, print the answer as JSON", _run_args, _run),
    "batch": ("run a task on every line of a file, with a progress bar", _batch_args, _batch),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferd", description="Inference for Python developers.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add_args, _) in SUBCOMMANDS.items():
        add_args(commands.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed): a code, as every command
        return exc.code if isinstance(exc.code, int) else 2
    return SUBCOMMANDS[args.command][2](args)
