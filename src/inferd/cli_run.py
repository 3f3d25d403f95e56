"""`inferd run <task> <input>`: one call, the answer as JSON on stdout (images and audio to --output).

inferd run text-classification "I love this movie" --top-k 1
inferd run text-to-image "a red square" --width 64 --output square.png
echo "Once upon a time" | inferd run text-generation - --max-new-tokens 20 --stream
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .cli_tasks import (
    MAIN_INPUT,
    USER_ERRORS,
    UsageError,
    add_connection_args,
    add_input_extras,
    add_param_args,
    build_inputs,
    call,
    collect_params,
    make_client,
    one_line,
    to_json,
)
from .tasks import TASKS, InputKind, Task


def add_run_args(parser: argparse.ArgumentParser) -> None:
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True, title="tasks")
    for task in TASKS.values():
        sub = tasks.add_parser(task.name, help=task.summary, description=task.summary)
        if task.input_kind is not InputKind.QUESTION_CONTEXT:
            sub.add_argument("input", help=MAIN_INPUT[task.input_kind])
        add_input_extras(sub, task, required=True)
        media = "image" if task.returns_image else "audio" if task.returns_audio else None
        sub.add_argument(
            "--output",
            "-o",
            type=Path,
            required=False,
            help=f"write the {media} here (required)" if media else "write the JSON here instead of stdout",
        )
        if task.name == "text-generation":
            sub.add_argument("--stream", action="store_true", help="print tokens as they are generated")
        add_connection_args(sub)
        add_param_args(sub, task)


def run(args: argparse.Namespace) -> int:
    task = TASKS[args.task]
    try:
        params = collect_params(task, args)
        if (task.returns_image or task.returns_audio) and args.output is None:
            what = "an image" if task.returns_image else "audio"
            raise UsageError(f"{task.name} returns {what}: pass --output FILE to write it to")
        if getattr(args, "stream", False) and (params.get("details") or params.get("decoder_input_details")):
            raise UsageError("--stream prints tokens only; drop --details to stream")
        client = make_client(args)
    except UsageError as exc:
        print(f"inferd run {task.name}: error: {exc}", file=sys.stderr)
        return 2
    try:
        inputs = build_inputs(task, _main_input(args), _extras(args))
        return asyncio.run(_run(client, task, inputs, params, args))
    except USER_ERRORS as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _main_input(args: argparse.Namespace) -> Any:
    value = getattr(args, "input", None)
    return sys.stdin.read().rstrip("\n") if value == "-" else value


def _extras(args: argparse.Namespace) -> dict[str, Any]:
    extras = {k: getattr(args, k, None) for k in ("question", "context", "sentences", "query")}
    if extras["context"] == "-":
        extras["context"] = sys.stdin.read().rstrip("\n")
    return extras


async def _run(client: Any, task: Task, inputs: Any, params: dict[str, Any], args: argparse.Namespace) -> int:
    async with client:
        if getattr(args, "stream", False):
            async for token in await client.text_generation(inputs, stream=True, **params):
                sys.stdout.write(token)
                sys.stdout.flush()
            sys.stdout.write("\n")
            return 0
        result = await call(client, task, inputs, params)
    write_result(task, result, args.output)
    return 0


def write_result(task: Task, result: Any, output: Path | None) -> None:
    """Images and audio to `output` (a note on stderr); everything else as JSON to `output` or stdout."""
    if task.returns_image and output is not None:
        fmt = None if output.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif") else "PNG"
        result.save(output, format=fmt)
        print(f"wrote {output} ({result.width}x{result.height})", file=sys.stderr)
        return
    if task.returns_audio and output is not None:
        if isinstance(result, (bytes, bytearray)):
            output.write_bytes(result)
            print(f"wrote {output} ({len(result)} bytes)", file=sys.stderr)
            return
        # audio-to-audio: one file per returned track, the JSON lists them
        listing = []
        for i, track in enumerate(result):
            path = output if i == 0 else output.with_name(f"{output.stem}-{i}{output.suffix}")
            path.write_bytes(track["blob"])
            listing.append(
                {"label": track.get("label"), "content-type": track.get("content-type"), "file": str(path)}
            )
            print(f"wrote {path}", file=sys.stderr)
        result, output = listing, None
    indent = 2 if output is None and sys.stdout.isatty() else None
    text = json.dumps(to_json(result), ensure_ascii=False, indent=indent)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
