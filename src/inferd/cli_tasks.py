"""What `inferd run` and `inferd batch` share: flags generated from the task registry, inputs shaped by the
task's InputKind, one call through the async client, and results turned into JSON.

Nothing here does I/O at import time, and nothing imports the server or tqdm.
"""

from __future__ import annotations

import argparse
import base64
import csv
import dataclasses
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .client import AsyncInferenceClient
from .errors import HfHubHTTPError, InferdError
from .tasks import InputKind, Param, ParameterError, Task

# A CLI user runs a local server: with no --base-url, INFERD_URL or HF_INFERENCE_ENDPOINT, calls go here
# (the library's default stays the hosted API).
DEFAULT_BASE_URL = "http://127.0.0.1:8080"

# Flags the commands define themselves; a task parameter of the same name becomes --param-<name>.
RESERVED = frozenset(
    {"model", "base-url", "token", "timeout", "output", "stream", "question", "context", "sentences", "query"}
    | {"concurrency", "resume", "help"}
)

# Mistakes of the user or the world (bad input, server down, refused request): one line, exit 1.
USER_ERRORS: tuple[type[BaseException], ...] = (InferdError, OSError, ValueError, ImportError)


class UsageError(Exception):
    """A mistake on the command line: reported with the command's name, exit code 2."""


def one_line(exc: BaseException) -> str:
    """`<type>: <message>` on one line, as `error:` lines and batch records show it."""
    text = str(exc)
    if isinstance(exc, HfHubHTTPError) and exc.server_message:  # the server's words, not the HTTP boilerplate
        text = f"{exc.server_message} (HTTP {exc.status_code})"
    message = " ".join(text.split()) or repr(exc)
    return f"{type(exc).__name__}: {message}"


# ---- flags from the registry ------------------------------------------------------------------------


def _limits(p: Param) -> str:
    parts = [{bool: "flag", int: "integer", float: "number", str: "string"}.get(p.type, "")]
    if p.type is list:
        parts = ["comma-separated or repeated" if p.items is str else "JSON list, or comma-separated"]
    if p.type is dict:
        parts = ["JSON object"]
    if p.minimum is not None:
        parts.append(f"{'>' if p.exclusive_minimum else '>='} {p.minimum:g}")
    if p.maximum is not None:
        parts.append(f"<= {p.maximum:g}")
    return ", ".join(x for x in parts if x)


def flag_name(p: Param) -> str:
    name = p.name.replace("_", "-")
    return f"--param-{name}" if name in RESERVED else f"--{name}"


def _list_value(text: str) -> list[Any]:
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"not a JSON list: {exc}") from None
        if not isinstance(value, list):
            raise argparse.ArgumentTypeError("not a JSON list")
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"key\": 1}'")
    return value


def add_param_args(parser: argparse.ArgumentParser, task: Task) -> None:
    """One flag per task parameter; the help shows its description and limits, from `inferd.tasks`."""
    if not task.parameters:
        return
    group = parser.add_argument_group("task parameters (see `inferd.tasks`)")
    for p in task.parameters:
        help_text = f"{p.description} ({_limits(p)})".replace("%", "%%")
        kw: dict[str, Any] = {"dest": f"param_{p.name}", "default": None, "help": help_text}
        if p.type is bool:
            group.add_argument(flag_name(p), action=argparse.BooleanOptionalAction, **kw)
        elif p.type is list:
            group.add_argument(flag_name(p), action="append", type=_list_value, metavar="A,B", **kw)
        elif p.type is dict:
            group.add_argument(flag_name(p), type=_json_object, metavar="JSON", **kw)
        else:
            kw["metavar"] = None if p.choices else p.type.__name__.upper()
            group.add_argument(flag_name(p), type=p.type, choices=p.choices, **kw)


def collect_params(task: Task, args: argparse.Namespace) -> dict[str, Any]:
    """The parameters given as flags, checked against the task's limits (UsageError names the flag)."""
    given: dict[str, Any] = {}
    for p in task.parameters:
        value = getattr(args, f"param_{p.name}", None)
        if value is None:
            continue
        given[p.name] = [x for chunk in value for x in chunk] if p.type is list else value
    try:
        return task.validate_parameters(given)
    except ParameterError as exc:
        raise UsageError(_flag_message(task, str(exc))) from None


def _flag_message(task: Task, message: str) -> str:
    for p in task.parameters:
        message = message.replace(f"`{p.name}`", f"{flag_name(p)} (`{p.name}`)")
    return message


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where requests go")
    group.add_argument("--model", help="model id on the server, or a model URL")
    group.add_argument(
        "--base-url",
        help=f"server URL (default: env INFERD_URL, then HF_INFERENCE_ENDPOINT, then {DEFAULT_BASE_URL})",
    )
    group.add_argument("--token", help="bearer token (default: env INFERD_API_KEY, then HF_TOKEN)")
    group.add_argument(
        "--timeout", type=float, help="seconds per call, the wait for a loading model included"
    )


def make_client(args: argparse.Namespace) -> AsyncInferenceClient:
    """The async client the flags and environment describe; UsageError for contradictory flags."""
    model: str | None = args.model
    if model and model.startswith(("http://", "https://")):
        if args.base_url:
            raise UsageError("pass either a model URL as --model or --base-url, not both")
        base_url = None
    else:
        base_url = (
            args.base_url
            or os.environ.get("INFERD_URL")
            or os.environ.get("HF_INFERENCE_ENDPOINT")
            or DEFAULT_BASE_URL
        )
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be greater than 0")
    token = args.token or os.environ.get("INFERD_API_KEY") or None
    return AsyncInferenceClient(model=model, token=token, timeout=args.timeout, base_url=base_url)


# ---- inputs by InputKind ----------------------------------------------------------------------------

# What one input is, for the help of each command.
MAIN_INPUT: Mapping[InputKind, str] = {
    InputKind.TEXT: "the text ('-' reads stdin)",
    InputKind.CONVERSATION: "the user's message ('-' reads stdin)",
    InputKind.IMAGE: "image path or URL",
    InputKind.AUDIO: "audio path or URL",
    InputKind.IMAGE_QUESTION: "image path or URL (with --question)",
    InputKind.SENTENCES: "the source sentence (with --sentences)",
    InputKind.TABLE: "table file: CSV with a header row, or JSON (columns or rows)",
    InputKind.TABLE_QUERY: "table file: CSV or JSON (with --query)",
}


def add_input_extras(parser: argparse.ArgumentParser, task: Task, *, required: bool) -> None:
    """The flags that complete an input: --question, --context, --sentences, --query."""
    kind = task.input_kind
    if kind in (InputKind.QUESTION_CONTEXT, InputKind.IMAGE_QUESTION):
        parser.add_argument("--question", required=required, help="the question")
    if kind is InputKind.QUESTION_CONTEXT:
        parser.add_argument(
            "--context", required=required, help="the text to find the answer in ('-': stdin)"
        )
    if kind is InputKind.SENTENCES:
        parser.add_argument(
            "--sentences",
            action="append",
            type=_list_value,
            required=required,
            metavar="A,B",
            help="sentences to compare with the source (comma-separated or repeated)",
        )
    if kind is InputKind.TABLE_QUERY:
        parser.add_argument("--query", "--question", dest="query", required=required, help="the question")


def read_table(path: str | Path) -> dict[str, list[str]]:
    """A table file as the wire carries it: {column: [cell, ...]}, every cell a string."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    else:
        data = json.loads(text)
        if isinstance(data, dict):
            return {
                str(k): [_cell(v) for v in (col if isinstance(col, list) else [col])]
                for k, col in data.items()
            }
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path}: a JSON table is an object of columns or a list of row objects")
        rows = data
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if not columns:
        raise ValueError(f"{path}: the table is empty")
    return {c: [_cell(row.get(c)) for row in rows] for c in columns}


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def build_inputs(task: Task, main: Any, extras: Mapping[str, Any]) -> Any:
    """The task's input in its wire shape (as `Task.example_input`) from a main input and the extra flags."""
    kind = task.input_kind
    sentences = extras.get("sentences")
    if isinstance(sentences, list) and sentences and isinstance(sentences[0], list):
        sentences = [s for chunk in sentences for s in chunk]  # repeated --sentences
    pieces = {
        InputKind.QUESTION_CONTEXT: lambda: {
            "question": extras.get("question") or main,
            "context": extras.get("context"),
        },
        InputKind.IMAGE_QUESTION: lambda: {"image": main, "question": extras.get("question")},
        InputKind.SENTENCES: lambda: {"source_sentence": main, "sentences": sentences},
        InputKind.TABLE_QUERY: lambda: {"table": read_table(main), "query": extras.get("query")},
        InputKind.TABLE: lambda: read_table(main),
    }
    if kind not in pieces:
        return main
    value = pieces[kind]()
    missing = [k for k, v in value.items() if v is None] if kind is not InputKind.TABLE else []
    if missing:
        raise ValueError(f"{task.name} needs {' and '.join(missing)} (see `inferd run {task.name} --help`)")
    return value


def _fields(task: Task, inputs: Any, *names: str) -> list[Any]:
    if not isinstance(inputs, Mapping) or any(n not in inputs for n in names):
        shape = ", ".join(f'"{n}": ...' for n in names)
        raise ValueError(f"{task.name} takes an object {{{shape}}} as input, got {type(inputs).__name__}")
    return [inputs[n] for n in names]


async def call(client: AsyncInferenceClient, task: Task, inputs: Any, params: dict[str, Any]) -> Any:
    """One call of the client method for `task`, with wire-shaped `inputs` and checked `params`."""
    method = getattr(client, task.python_name)
    kind = task.input_kind
    if kind is InputKind.CONVERSATION:
        turn = {"text": inputs} if isinstance(inputs, str) else inputs
        text, *_ = _fields(task, turn, "text")
        past = (turn.get("generated_responses"), turn.get("past_user_inputs"))
        return await method(text, *past, parameters=params or None)
    names = {
        InputKind.QUESTION_CONTEXT: ("question", "context"),
        InputKind.IMAGE_QUESTION: ("image", "question"),
        InputKind.SENTENCES: ("source_sentence", "sentences"),
        InputKind.TABLE_QUERY: ("table", "query"),
    }.get(kind)
    args = _fields(task, inputs, *names) if names else [inputs]
    if kind in (InputKind.TEXT, InputKind.SENTENCES) and not isinstance(args[0], (str, list)):
        raise ValueError(f"{task.name} takes text as input, got {type(args[0]).__name__}")
    return await method(*args, **params)


# ---- results as JSON --------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """Plain JSON data: numpy arrays become lists, bytes and images base64 strings, dataclasses dicts."""
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if type(value).__module__.split(".")[0] == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "save") and type(value).__module__.startswith("PIL."):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")
    return value
