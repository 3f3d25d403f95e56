"""inferd's own server vs the same app on Ray Serve: what Ray's proxy costs on one machine.

    python bench/ray_serve.py                                  # 1 and 16 clients, 20 s per cell
    python bench/ray_serve.py --seconds 10 --concurrency 16 --systems "inferd serve" "Ray Serve, 1"

Model: sentence-transformers/all-MiniLM-L6-v2 (the default embedding model, from its installed package), one
short sentence per request to /pipeline/feature-extraction/<id>, closed loop from bench/_harness.py. The systems
run one after the other, never two at once: each `inferd serve --ray` starts a Ray of its own. CPU per request
counts the server's whole process tree (for Ray: GCS, raylet, controller, proxy and replicas).
On 2 cores a second replica cannot add throughput; the figures measure Ray's overhead, not its scaling.
Writes bench/results/ray_serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    Server,
    closed_loop,
    inferd_serve,
    load_average,
    machine_info,
    post_json,
    print_table,
    ratio,
    wait_for_quiet,
    write_results,
)
from embeddings import MODEL_ID, make_texts  # noqa: E402

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
SERVE = inferd_serve(MODEL_ID)
SYSTEMS: dict[str, tuple[list[str], dict[str, str]]] = {
    "inferd serve": (SERVE, {}),
    "Ray Serve, 1 replica": ([*SERVE, "--ray", "--replicas", "1"], RAY_ENV),
    "Ray Serve, 2 replicas": ([*SERVE, "--ray", "--replicas", "2"], RAY_ENV),
    # Ray >= 2.56: gRPC from proxy to replica, direct ingress, less request-path logging (spec §4.3).
    "Ray Serve, 1 replica, THROUGHPUT_OPTIMIZED": (
        [*SERVE, "--ray", "--replicas", "1"],
        {**RAY_ENV, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
    ),
}


class RayServer(Server):
    """Stops the driver alone first: `inferd serve --ray` then deletes the app and stops the Ray it started.
    A signal to the whole group (Server.stop) would stop Ray's processes under it while it deletes."""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # anything left behind in its session's group
        super().stop()


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of `root` and every process below it (Linux /proc)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def measure(name: str, srv: Server, texts: list[str], c: int, seconds: float) -> dict[str, Any]:
    url = f"{srv.url}/pipeline/feature-extraction/{MODEL_ID}"
    started: list[float] = []
    run = asyncio.run(
        closed_loop(
            post_json(url, lambda i: {"inputs": texts[i % len(texts)]}),
            concurrency=c,
            requests=100_000,
            max_seconds=seconds,
            warmup=max(2 * c, 16),
            on_start=lambda: started.append(tree_cpu_s(srv.pid)),
        )
    )
    row: dict[str, Any] = {"system": name, **run.summary(), "load_average_1m": load_average()}
    row["cpu_ms_per_req"] = round((tree_cpu_s(srv.pid) - started[0]) / max(1, run.requests) * 1000, 2)
    row["startup_s"] = round(srv.startup_seconds, 1)
    print(
        f"   {name:44} c={c:<3} {row['throughput']:8.1f}/s  p50 {row['p50_ms']:7.1f} ms"
        f"  p99 {row['p99_ms']:7.1f} ms  cpu {row['cpu_ms_per_req']:6.2f} ms/req  err {row['errors']}"
        f"  load {row['load_average_1m']}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--systems", nargs="*", default=[], help="name prefixes (default: all)")
    args = parser.parse_args()
    texts = make_texts("short")
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for name, (cmd, env) in SYSTEMS.items():
        if args.systems and not any(name.startswith(s) for s in args.systems):
            continue
        slug = "ray-bench-" + "".join(ch if ch.isalnum() else "-" for ch in name.lower())
        wait_for_quiet()
        try:
            with RayServer(slug, cmd, env=env, startup_s=300) as srv:
                print(f"== {name} up in {srv.startup_seconds:.1f}s (log {srv.log_path})", flush=True)
                rows += [measure(name, srv, texts, c, args.seconds) for c in args.concurrency]
        except RuntimeError as exc:
            notes.append(f"{name} could not be measured: {exc}")
            print(f"== {name} FAILED: {exc}", flush=True)
    base = {r["concurrency"]: r for r in rows if r["system"] == "inferd serve"}
    for r in rows:
        plain = base.get(r["concurrency"])
        r["throughput_vs_plain"] = ratio(r["throughput"], plain["throughput"]) if plain else None
    print_table(
        rows,
        [
            "system",
            "concurrency",
            "throughput",
            "throughput_vs_plain",
            "p50_ms",
            "p99_ms",
            "cpu_ms_per_req",
            "errors",
        ],
    )
    packages = ("inferd", "ray", "onnxruntime", "starlette", "uvicorn")
    payload = {"machine": machine_info(packages), "model": MODEL_ID, "rows": rows, "notes": notes}
    print(f"wrote {write_results('ray_serve', payload)}")


if __name__ == "__main__":
    main()
