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


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Labels]]:
    """(base URL, the classification model) of a real server on a free port of 127.0.0.1."""
    folder = tmp_path_factory.mktemp("models")
    backend = CliBackend()
    register_backend("cli-test", backend)
    tasks = Labels.tasks
    catalogue = {
        "test/labels": ModelEntry("test/labels", tasks, "cli-test", f"path:{folder}", default_for=tasks),
        "test/words": ModelEntry(
            "test/words", ("text-generation",), "cli-test", f"path:{folder}", default_for=("text-generation",)
        ),
    }
    settings = EngineSettings(
        allowed_dirs=(folder,), digest_cache=folder / "digests.json", preload=tuple(catalogue)
    )
    app = create_app(Engine(catalogue, settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    port = uv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", backend.labels
    uv.should_exit = True
    thread.join(10)


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
