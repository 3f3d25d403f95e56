"""`make fuzz`: schemathesis against a real `inferd serve`, over every operation of its own /openapi.json.

    python scripts/fuzz.py                         # the default models, ~tens of thousands of cases
    python scripts/fuzz.py --config models.toml --max-examples 20 --phases fuzzing

Starts `inferd serve` (the default models, or `--config`), waits for /health, then runs `st run` with the
hooks of scripts/fuzz_hooks.py (real images and audio for media fields, a tally of every answer). Model ids
are pinned to the served models because the schema lists them as enums. Requests carry
`X-Wait-For-Model: true`, so a model that loads on first use is waited for instead of answering 503.
Prints: operations, cases, answers by status class, 5xx by kind, schemathesis failures, whether the server
is alive after; exits 1 when there is a 5xx, a
schemathesis failure, or a dead server. tests/server/test_schema_fuzz.py runs `schemathesis_run` briefly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent


def get(url: str, timeout: float = 10) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def schemathesis_run(
    base_url: str, *, seed: int, max_examples: int, phases: str, workers: int, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """`st run` over `base_url`'s /openapi.json with every check: its exit code, output and tally."""
    with tempfile.TemporaryDirectory() as tmp:
        tally_path = Path(tmp) / "tally.json"
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "fuzz_hooks",
            "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")]),
            "INFERD_FUZZ_TALLY": str(tally_path),
        }
        st = [
            sys.executable,
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        ]
        cmd = [
            *st, "run", f"{base_url}/openapi.json",
            "--checks", "all", "--seed", str(seed), "--max-examples", str(max_examples),
            "--phases", phases, "--workers", str(workers), "--no-color",
            "--header", "X-Wait-For-Model: true", "--report-dir", str(Path(tmp) / "report"),
            *extra,
        ]  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        found = (
            json.loads(tally_path.read_text()) if tally_path.exists() else {"tally": {}, "server_errors": []}
        )
    output = done.stdout + done.stderr
    failures = re.search(r"found (\d+) unique failures", output)
    return {
        "exit_code": done.returncode,
        "output": output,
        "tally": found["tally"],
        "server_errors": found["server_errors"],
        "failures": int(failures.group(1)) if failures else 0,
    }


def server_errors(tally: dict[str, int]) -> dict[str, int]:
    """The 5xx answers by `status error_type`."""
    return {k: v for k, v in tally.items() if k[:1] == "5" and k[1:3].isdigit()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a models.toml for `inferd serve` (default: the default models)")
    parser.add_argument("--max-examples", type=int, default=100, help="cases per operation and phase (100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-time", type=int, help="stop the run after this many seconds")
    # Long: the fuzzer asks for up to 4096 new tokens, minutes on 2 busy cores; a 504 there is the timeout doing
    # its job, not a failure this run looks for.
    parser.add_argument("--request-timeout", type=float, default=600, help="the server's, in seconds (600)")
    parser.add_argument("--log", default="fuzz-server.log", help="the server's log file (fuzz-server.log)")
    args = parser.parse_args(argv)

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [sys.executable, "-m", "inferd", "serve", "--port", str(port), "--log-level", "warning"]
    serve += ["--request-timeout", str(args.request_timeout)]
    if args.config:
        serve += ["--config", args.config]
    started = time.monotonic()
    with open(args.log, "w") as log:
        server = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT)
    try:
        while get(f"{base}/health", timeout=2) != 200:
            if server.poll() is not None or time.monotonic() - started > 600:
                print(f"the server did not start: see {args.log}", file=sys.stderr)
                return 1
            time.sleep(1)
        with urllib.request.urlopen(f"{base}/openapi.json") as response:
            schema = json.load(response)
        operations = sum(len(item) for item in schema["paths"].values())
        extra = ["--max-time", str(args.max_time)] if args.max_time else []
        extra += ["--request-timeout", str(args.request_timeout + 30)]
        # `--checks all` holds answers to 10 s by default; a long generation may take up to the server's timeout.
        extra += ["--max-response-time", str(args.request_timeout)]
        t0 = time.monotonic()
        run = schemathesis_run(
            base, seed=args.seed, max_examples=args.max_examples, phases=args.phases, workers=args.workers,
            extra=extra,
        )  # fmt: skip
        seconds = time.monotonic() - t0
        alive = server.poll() is None and get(f"{base}/health") == 200 and get(f"{base}/openapi.json") == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    Path("fuzz-report.txt").write_text(run["output"])
    tally = run["tally"]
    fives = server_errors(tally)
    print(f"operations: {operations}")
    print(f"cases: {tally.get('cases', 0)} in {seconds:.0f} s (seed {args.seed}, phases {args.phases})")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.items()) if k != "cases"))
    print(f"5xx: {sum(fives.values())} {fives or ''}".rstrip())
    print(
        f"schemathesis failures: {run['failures']} (exit code {run['exit_code']}; full output in fuzz-report.txt)"
    )
    print(f"server alive after: {'yes' if alive else 'NO'} (log: {args.log})")
    for error in run["server_errors"][:5]:
        print("  ", error)
    return 0 if alive and not fives and run["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
