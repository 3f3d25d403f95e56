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
import signal
import sys
from collections.abc import Callable, Sequence

# (one-line summary, add its flags, run it -> exit code)
Subcommand = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _serve_args(p: argparse.ArgumentParser) -> None:
    from .cli_serve import add_serve_args

    add_serve_args(p)


def _serve(args: argparse.Namespace) -> int:
    # Before any runtime loads OpenMP: idle workers sleep instead of spinning on the cores the server needs.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .cli_serve import serve_values
    from .server.config import ConfigError

    try:
        values = serve_values(args)
    except (ConfigError, ValueError) as exc:
        print(f"inferd serve: {exc}", file=sys.stderr)
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
    from .server.config import connection_settings, engine_settings, server_settings
    from .server.connections import with_header_timeout
    from .server.drain import DrainingServer
    from .server.engine import Engine

    app = create_app(Engine(values["catalogue"], engine_settings(values)), server_settings(values))
    connections = connection_settings(values)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=args.log_level,
        # An idle keep-alive connection is closed after this; connections beyond the cap are answered 503
        # (20,000 idle sockets used to reach the fd limit and lock new clients out).
        timeout_keep_alive=int(connections["keep_alive_timeout_s"]),
        limit_concurrency=int(connections["max_connections"]),
        http=with_header_timeout(),
    )
    drain = connections["drain_timeout_s"]
    # uvicorn re-raises the SIGTERM it handled once it is done; a drained server exits 0, as its supervisor expects.
    signal.signal(signal.SIGTERM, lambda *_: None)
    DrainingServer(config, drain_timeout_s=drain).run()
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
