"""`inferd run` and `inferd batch` against a real inferd server (uvicorn in a thread) with a tiny test backend."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from PIL import Image

from inferd.backends import (
    Backend,
    GeneratedToken,
    Generation,
    InputError,
    Model,
    StreamStep,
    TextGenerator,
    register_backend,
)
from inferd.catalogue import ModelEntry
from inferd.cli import main
from inferd.server.app import create_app
from inferd.server.engine import Engine, EngineSettings
from inferd.server.settings import ServerSettings


class Labels(Model):
    """POSITIVE when the text says 'love'; refuses 'reject'; draws red images of the asked size."""

    tasks = (
        "text-classification",
        "text-to-image",
        "question-answering",
        "tabular-classification",
        "image-classification",
    )

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict(self, task, inputs, parameters):
        self.seen.extend(inputs)
        if task == "text-to-image":
            return [
                Image.new("RGB", (parameters.get("width", 8), parameters.get("height", 8)), "red")
                for _ in inputs
            ]
        if task == "question-answering":
            return [{"answer": x["context"][:5], "start": 0, "end": 5, "score": 0.5} for x in inputs]
        if task == "tabular-classification":
            return [[f"{len(x)} columns"] * len(next(iter(x.values()))) for x in inputs]
        if task == "image-classification":
            return [[{"label": f"{x.width}x{x.height}", "score": 1.0}] for x in inputs]
        if "reject" in inputs:
            raise InputError("The test model refuses 'reject'.")
        results = []
        for text in inputs:
            pos = 0.9 if "love" in text else 0.2
            labels = sorted([("POSITIVE", pos), ("NEGATIVE", round(1 - pos, 1))], key=lambda x: -x[1])
            results.append([{"label": k, "score": s} for k, s in labels][: parameters.get("top_k", 2)])
        return results


class Words(TextGenerator):
    tasks = ("text-generation",)
    supported_parameters = frozenset({"max_new_tokens"})

    def generate(self, prompt, parameters):
        tokens = [GeneratedToken(i, f" w{i}", -0.5) for i in range(parameters.get("max_new_tokens", 3))]
        return Generation("".join(t.text for t in tokens), tokens, "length", prompt_tokens=1)

    def stream(self, prompt, parameters) -> Iterator[StreamStep]:
        n = parameters.get("max_new_tokens", 3)
        for i in range(n):
            yield StreamStep(GeneratedToken(i, f" w{i}", -0.5), "length" if i == n - 1 else None)


class CliBackend(Backend):
    name = "cli-test"

    def __init__(self) -> None:
        self.labels = Labels()

    def load(self, entry, path):
        return Words() if "text-generation" in entry.tasks else self.labels


@contextmanager
def serving(folder: Path, settings: ServerSettings | None = None) -> Iterator[tuple[str, Labels]]:
    """(base URL, the classification model) of a real server on a free port of 127.0.0.1."""
    backend = CliBackend()
    register_backend("cli-test", backend)
    tasks = Labels.tasks
    catalogue = {
        "test/labels": ModelEntry("test/labels", tasks, "cli-test", f"path:{folder}", default_for=tasks),
        "test/words": ModelEntry(
            "test/words", ("text-generation",), "cli-test", f"path:{folder}", default_for=("text-generation",)
        ),
    }
    engine_settings = EngineSettings(
        allowed_dirs=(folder,), digest_cache=folder / "digests.json", preload=tuple(catalogue)
    )
    app = create_app(Engine(catalogue, engine_settings), settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", backend.labels
    finally:
        uv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Labels]]:
    with serving(tmp_path_factory.mktemp("models")) as served:
        yield served


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> Iterator[str]:
    """The URL of a server that wants `Authorization: Bearer sekret`."""
    with serving(tmp_path_factory.mktemp("keyed"), ServerSettings(api_key="sekret")) as (url, _):
        yield url


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_text_classification_with_a_parameter_flag(server, capsys):
    url, _ = server
    code, out, err = run_cli(
        capsys, "run", "text-classification", "I love it", "--top-k", "1", "--base-url", url
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"label": "POSITIVE", "score": 0.9}]


def test_the_server_url_comes_from_inferd_url(server, capsys, monkeypatch):
    url, _ = server
    monkeypatch.setenv("INFERD_URL", url)
    code, out, _ = run_cli(capsys, "run", "text-classification", "meh", "--model", "test/labels")
    assert code == 0
    assert json.loads(out)[0] == {"label": "NEGATIVE", "score": 0.8}


def test_with_no_url_anywhere_calls_go_where_inferd_serve_listens_by_default(monkeypatch):
    from inferd.cli import build_parser
    from inferd.cli_tasks import make_client

    for name in ("INFERD_URL", "HF_INFERENCE_ENDPOINT", "INFERD_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    client = make_client(build_parser().parse_args(["run", "text-classification", "x"]))

    class Listening(Exception):
        """Raised instead of serving: where `inferd serve` with no flags would listen."""

    def where(app, **kwargs):
        raise Listening(f"http://{kwargs['host']}:{kwargs['port']}")

    monkeypatch.setattr(uvicorn, "Config", where)
    with pytest.raises(Listening) as listening:
        main(["serve"])
    assert client.base_url == str(listening.value) == "http://127.0.0.1:8080"


def test_url_fallbacks_inferd_url_then_hf_inference_endpoint(server, capsys, monkeypatch):
    url, _ = server
    monkeypatch.delenv("INFERD_URL", raising=False)
    monkeypatch.setenv("HF_INFERENCE_ENDPOINT", url)
    code, out, _ = run_cli(capsys, "run", "text-classification", "I love it", "--model", "test/labels")
    assert code == 0 and json.loads(out)[0]["label"] == "POSITIVE"
    monkeypatch.setenv("HF_INFERENCE_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: INFERD_URL wins
    monkeypatch.setenv("INFERD_URL", url)
    code, out, _ = run_cli(capsys, "run", "text-classification", "I love it", "--model", "test/labels")
    assert code == 0 and json.loads(out)[0]["label"] == "POSITIVE"


@pytest.mark.parametrize(
    "flag, env, token_file, accepted",
    [
        (None, {}, None, False),
        (None, {"INFERD_API_KEY": "sekret"}, None, True),
        (None, {"HF_TOKEN": "sekret"}, None, True),
        (None, {}, "sekret", True),  # the token file under HF_HOME, as huggingface_hub's client reads it
        (None, {"INFERD_API_KEY": "sekret", "HF_TOKEN": "wrong"}, None, True),
        (None, {"HF_TOKEN": "sekret"}, "wrong", True),
        ("sekret", {"INFERD_API_KEY": "wrong", "HF_TOKEN": "wrong"}, "wrong", True),
        ("wrong", {"INFERD_API_KEY": "sekret"}, None, False),
    ],
)
def test_token_fallbacks(keyed_server, capsys, monkeypatch, tmp_path, flag, env, token_file, accepted):
    for name in ("INFERD_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if token_file is not None:
        (tmp_path / "token").write_text(token_file + "\n")
    argv = ["run", "text-classification", "I love it", "--base-url", keyed_server]
    code, out, err = run_cli(capsys, *argv, *(["--token", flag] if flag else []))
    if accepted:
        assert (code, err) == (0, "") and json.loads(out)[0]["label"] == "POSITIVE"
    else:
        assert code == 1 and "401" in err and "API key" in err, err


def test_a_parameter_out_of_range_is_a_usage_error_naming_the_flag(server, capsys):
    url, model = server
    before = len(model.seen)
    code, out, err = run_cli(capsys, "run", "text-classification", "x", "--top-k", "0", "--base-url", url)
    assert code == 2 and out == ""
    assert "--top-k" in err and "at least 1" in err and "Traceback" not in err
    assert len(model.seen) == before  # never sent
    code, _, err = run_cli(capsys, "run", "text-classification", "x", "--function-to-apply", "cube")
    assert code == 2 and "invalid choice" in err


def test_errors_are_one_line_with_exit_code_1(server, capsys):
    url, _ = server
    code, out, err = run_cli(capsys, "run", "text-classification", "reject", "--base-url", url)
    assert code == 1 and out == ""
    assert err.startswith("error: ValidationError: ") and "refuses 'reject'" in err
    assert err.count("\n") == 1
    closed = f"http://127.0.0.1:{_closed_port()}"
    code, _, err = run_cli(capsys, "run", "text-classification", "x", "--base-url", closed, "--timeout", "5")
    assert code == 1 and err.startswith("error: InferenceConnectionError: ")


def test_run_an_image_task_writes_the_output_file(server, capsys, tmp_path):
    url, _ = server
    target = tmp_path / "square.png"
    code, _, err = run_cli(
        capsys,
        "run",
        "text-to-image",
        "a red square",
        "--width",
        "20",
        "--height",
        "10",
        "-o",
        str(target),
        "--base-url",
        url,
    )
    assert code == 0 and str(target) in err
    with Image.open(target) as image:
        assert image.size == (20, 10) and image.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    code, _, err = run_cli(capsys, "run", "text-to-image", "a red square", "--base-url", url)
    assert code == 2 and "--output" in err


def test_inputs_by_kind_question_context_table_and_image_path(server, capsys, tmp_path):
    url, _ = server
    code, out, _ = run_cli(
        capsys,
        "run",
        "question-answering",
        "--question",
        "Who?",
        "--context",
        "Clara lives here.",
        "--base-url",
        url,
    )
    assert code == 0 and json.loads(out)["answer"] == "Clara"
    table = tmp_path / "iris.csv"
    table.write_text("sepal,petal\n5.1,1.4\n4.9,1.3\n")
    code, out, _ = run_cli(capsys, "run", "tabular-classification", str(table), "--base-url", url)
    assert code == 0 and json.loads(out) == ["2 columns", "2 columns"]
    Image.new("RGB", (12, 7)).save(tmp_path / "cat.png")
    code, out, _ = run_cli(
        capsys, "run", "image-classification", str(tmp_path / "cat.png"), "--base-url", url
    )
    assert code == 0 and json.loads(out)[0]["label"] == "12x7"
    code, _, err = run_cli(
        capsys, "run", "image-classification", str(tmp_path / "dog.png"), "--base-url", url
    )
    assert code == 1 and err.startswith("error: FileNotFoundError: ")


def test_text_generation_streams_tokens(server, capsys):
    url, _ = server
    code, out, _ = run_cli(
        capsys, "run", "text-generation", "hi", "--max-new-tokens", "3", "--stream", "--base-url", url
    )
    assert code == 0 and out == " w0 w1 w2\n"


def test_stdin_input_in_process(server, capsys, monkeypatch):
    url, _ = server
    monkeypatch.setattr(sys, "stdin", io.StringIO("I love stdin\n"))
    code, out, _ = run_cli(capsys, "run", "text-classification", "-", "--base-url", url)
    assert code == 0 and json.loads(out)[0]["label"] == "POSITIVE"


def test_python_dash_m_inferd_reads_stdin(server):
    url, _ = server
    env = {**os.environ, "INFERD_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "inferd", "run", "text-classification", "-", "--top-k", "1"],
        input="so much love",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"label": "POSITIVE", "score": 0.9}]


def test_help_lists_tasks_and_parameter_limits(capsys):
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0 and "text-classification" in out and "Label a text" in out
    code, out, _ = run_cli(capsys, "run", "text-classification", "--help")
    assert code == 0 and "--top-k" in out and ">= 1" in out and "Return only the `top_k` best results." in out


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batch_over_a_txt_keeps_order_and_records_the_bad_input(server, capsys, tmp_path):
    url, _ = server
    inputs = tmp_path / "reviews.txt"
    inputs.write_text("I love it\nreject\n\nmeh\n")
    out = tmp_path / "results.jsonl"
    code, _, err = run_cli(
        capsys,
        "batch",
        "text-classification",
        str(inputs),
        "-o",
        str(out),
        "--concurrency",
        "3",
        "--top-k",
        "1",
        "--base-url",
        url,
    )
    assert code == 1  # something failed
    got = records(out)
    assert [r["input_index"] for r in got] == [0, 1, 3]  # line numbers; the blank line is no input
    assert got[0]["output"] == [{"label": "POSITIVE", "score": 0.9}]
    assert got[1]["error_type"] == "ValidationError" and "refuses" in got[1]["error"]
    assert got[2]["output"] == [{"label": "NEGATIVE", "score": 0.8}]
    assert "done 2, failed 1" in err and "calls/s" in err


def test_batch_over_jsonl_with_a_broken_line_and_per_line_parameters(server, capsys, tmp_path):
    url, _ = server
    inputs = tmp_path / "inputs.jsonl"
    lines = [
        '"I love it"',
        "{not json",
        '{"inputs": "meh", "parameters": {"top_k": 1}}',
        '{"inputs": "x", "parameters": {"top_k": -1}}',
    ]
    inputs.write_text("\n".join(lines) + "\n")
    code, out, _ = run_cli(capsys, "batch", "text-classification", str(inputs), "--base-url", url)
    assert code == 1
    got = [json.loads(line) for line in out.splitlines()]
    assert [r["input_index"] for r in got] == [0, 1, 2, 3]
    assert len(got[0]["output"]) == 2
    assert got[1]["error_type"] == "JSONDecodeError"
    assert got[2]["output"] == [{"label": "NEGATIVE", "score": 0.8}]
    assert got[3]["error_type"] == "ParameterError" and "top_k" in got[3]["error"]


def test_batch_over_a_csv_sends_one_table_row_per_input_in_order(server, capsys, tmp_path):
    url, model = server
    inputs = tmp_path / "iris.csv"
    inputs.write_text("sepal,petal\n5.1,1.4\n4.9,\n6.2,4.3\n")
    seen = len(model.seen)
    code, out, err = run_cli(capsys, "batch", "tabular-classification", str(inputs), "--base-url", url)
    assert code == 0 and "done 3, failed 0" in err
    got = [json.loads(line) for line in out.splitlines()]
    assert [r["input_index"] for r in got] == [0, 1, 2]  # data rows, the header is not one
    assert [r["output"] for r in got] == [["2 columns"]] * 3  # one row each, every column
    assert sorted(map(json.dumps, model.seen[seen:])) == sorted(
        json.dumps(row)
        for row in (
            {"sepal": ["5.1"], "petal": ["1.4"]},
            {"sepal": ["4.9"], "petal": [""]},  # an empty cell is an empty string, not a missing column
            {"sepal": ["6.2"], "petal": ["4.3"]},
        )
    )
    code, _, err = run_cli(capsys, "batch", "text-classification", str(inputs), "--base-url", url)
    assert code == 2 and ".csv inputs are for table tasks" in err


def test_batch_resume_skips_what_is_written(server, capsys, tmp_path):
    url, model = server
    inputs = tmp_path / "reviews.txt"
    inputs.write_text("first love\nsecond\nthird love\n")
    out = tmp_path / "results.jsonl"
    # an earlier run wrote input 0, and was cut off in the middle of input 1's line
    out.write_text('{"input_index": 0, "output": "kept"}\n{"input_index": 1, "out')
    seen = len(model.seen)
    code, _, err = run_cli(
        capsys, "batch", "text-classification", str(inputs), "-o", str(out), "--resume", "--base-url", url
    )
    assert code == 0 and "skipped 1" in err
    got = records(out)
    assert [r["input_index"] for r in got] == [0, 1, 2] and got[0]["output"] == "kept"
    assert got[2]["output"][0]["label"] == "POSITIVE"
    assert "first love" not in model.seen[seen:] and "second" in model.seen[seen:]


def test_batch_usage_errors(capsys, tmp_path):
    inputs = tmp_path / "reviews.txt"
    inputs.write_text("x\n")
    code, _, err = run_cli(capsys, "batch", "text-classification", str(inputs), "--resume")
    assert code == 2 and "--resume needs --output" in err
    code, _, err = run_cli(capsys, "batch", "text-classification", str(tmp_path / "in.xml"))
    assert code == 2 and ".jsonl" in err
    code, _, err = run_cli(capsys, "batch", "text-classification", str(tmp_path / "missing.txt"))
    assert code == 1 and err.startswith("error: FileNotFoundError")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
