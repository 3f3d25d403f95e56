"""`inferd batch <task> <file>`: every input of a file through the async client, a few at a time.

    inferd batch text-classification reviews.txt --output results.jsonl --concurrency 8
    inferd batch text-classification reviews.txt --output results.jsonl --resume   # after an interruption

Results are JSON lines in input order, `{"input_index": i, "output": ...}` or `{"input_index": i, "error": ...,
"error_type": ...}`; `input_index` is the input's line (0-based; for a CSV, its row after the header).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .cli_tasks import (
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

FORMATS = (".txt", ".jsonl", ".csv")


@dataclass
class Item:
    index: int
    inputs: Any = None
    parameters: dict[str, Any] | None = None
    error: BaseException | None = None  # the line itself was unreadable


def add_batch_args(parser: argparse.ArgumentParser) -> None:
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True, title="tasks")
    for task in TASKS.values():
        sub = tasks.add_parser(task.name, help=task.summary, description=task.summary)
        sub.add_argument(
            "file",
            type=Path,
            help=".txt (one input per line, as `inferd run` takes it), .jsonl (a string, or an object with"
            ' "inputs" and optional "parameters" per line), .csv (table tasks: one row per input)',
        )
        sub.add_argument("--output", "-o", type=Path, help="results as JSON lines (default: stdout)")
        sub.add_argument("--concurrency", type=int, default=8, help="calls in flight at once (default 8)")
        sub.add_argument("--resume", action="store_true", help="skip the inputs --output already has")
        add_input_extras(sub, task, required=False)
        add_connection_args(sub)
        add_param_args(sub, task)


def batch(args: argparse.Namespace) -> int:
    task = TASKS[args.task]
    try:
        params = collect_params(task, args)
        _check_args(task, args)
        client = make_client(args)
    except UsageError as exc:
        print(f"inferd batch {task.name}: error: {exc}", file=sys.stderr)
        return 2
    try:
        items = list(read_items(task, args.file, args))
        done = _written(args.output) if args.resume else set()
    except USER_ERRORS as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    todo = [item for item in items if item.index not in done]
    out: IO[str] = (
        open(args.output, "a" if args.resume else "w", encoding="utf-8") if args.output else sys.stdout
    )  # noqa: SIM115
    try:
        started = time.perf_counter()
        failed = asyncio.run(_batch(client, task, todo, params, args.concurrency, out))
    except KeyboardInterrupt:
        print("interrupted: run again with --resume to continue", file=sys.stderr)
        return 130
    finally:
        if out is not sys.stdout:
            out.close()
    seconds = time.perf_counter() - started
    skipped = f", skipped {len(items) - len(todo)} already written" if len(todo) < len(items) else ""
    rate = len(todo) / seconds if seconds > 0 else 0.0
    print(
        f"done {len(todo) - failed}, failed {failed}{skipped}; {rate:.1f} calls/s over {seconds:.1f} s",
        file=sys.stderr,
    )
    return 1 if failed else 0


def _check_args(task: Task, args: argparse.Namespace) -> None:
    suffix = args.file.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{args.file}: the inputs file must end in {', '.join(FORMATS)}")
    if suffix == ".csv" and task.input_kind is not InputKind.TABLE:
        raise UsageError(".csv inputs are for table tasks; use .txt or .jsonl")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.resume and args.output is None:
        raise UsageError("--resume needs --output (the results written so far)")


def read_items(task: Task, path: Path, args: argparse.Namespace) -> Iterator[Item]:
    """One Item per non-blank line (per data row for .csv); a line that cannot be read carries its error."""
    text = path.read_text(encoding="utf-8")
    extras = {k: getattr(args, k, None) for k in ("question", "context", "sentences", "query")}
    if path.suffix.lower() == ".csv":
        for i, row in enumerate(csv.DictReader(io.StringIO(text))):
            yield Item(i, {k: ["" if v is None else v] for k, v in row.items()})
        return
    jsonl = path.suffix.lower() == ".jsonl"
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            if not jsonl:
                yield Item(i, build_inputs(task, line, extras))
                continue
            value = json.loads(line)
            if isinstance(value, dict) and "inputs" in value:
                parameters = value.get("parameters")
                if parameters is not None and not isinstance(parameters, dict):
                    raise ValueError('"parameters" must be an object')
                value, params = value["inputs"], parameters
            else:
                params = None
            inputs = build_inputs(task, value, extras) if isinstance(value, str) else value
            yield Item(i, inputs, params)
        except (ValueError, OSError) as exc:
            yield Item(i, error=exc)


def _written(output: Path) -> set[int]:
    """Indices already in `output`; a last line cut short by an interruption is dropped from the file."""
    if not output.exists():
        return set()
    data = output.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        output.write_bytes(data)
    done = set()
    for line in data.decode("utf-8").splitlines():
        try:
            done.add(int(json.loads(line)["input_index"]))
        except (ValueError, KeyError, TypeError):
            continue
    return done


async def _batch(
    client: Any, task: Task, todo: list[Item], params: dict[str, Any], concurrency: int, out: IO[str]
) -> int:
    """Run `todo` with `concurrency` workers; write records in input order as they become ready."""
    bar = _progress(len(todo))
    ready: dict[int, dict[str, Any]] = {}
    position = 0
    failed = 0
    items = iter(todo)

    def flush() -> None:
        nonlocal position
        while position < len(todo) and todo[position].index in ready:
            out.write(json.dumps(ready.pop(todo[position].index), ensure_ascii=False) + "\n")
            position += 1
        out.flush()

    async def worker() -> None:
        nonlocal failed
        for item in items:
            record = await _one(client, task, item, params)
            failed += "error" in record
            ready[item.index] = record
            flush()
            bar.update(1)
            if failed:
                bar.set_postfix(failed=failed, refresh=False)

    async with client:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(todo)) or 1)))
    bar.close()
    return failed


async def _one(client: Any, task: Task, item: Item, params: dict[str, Any]) -> dict[str, Any]:
    try:
        if item.error is not None:
            raise item.error
        merged = {**params, **task.validate_parameters(item.parameters)} if item.parameters else params
        output = await call(client, task, item.inputs, merged)
        return {"input_index": item.index, "output": to_json(output)}
    except Exception as exc:  # one bad input never stops the others; its record says why
        name, _, message = one_line(exc).partition(": ")
        return {"input_index": item.index, "error": message, "error_type": name}


def _progress(total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # the `cli` extra is not installed: no bar, same results
        return _NoBar()
    return tqdm(total=total, file=sys.stderr, unit="call", dynamic_ncols=True)


class _NoBar:
    def update(self, n: int) -> None: ...

    def set_postfix(self, **kw: Any) -> None: ...

    def close(self) -> None: ...
