"""Client overhead: many small calls against one fast local endpoint, inferd vs huggingface_hub vs raw httpx.

    python bench/client_overhead.py [--calls 2000] [--rounds 3] [--hf-path DIR]

A raw asyncio server in a subprocess answers every POST with a fixed text-classification body, so the
clients are the bottleneck. Each contender runs in its own subprocess: sync = one call after another,
async = 64 calls in flight. Prints calls/s (median of the rounds) and the ratios, and writes
bench/results/client_overhead.json. `--hf-path` adds a second huggingface_hub (installed with
`pip install --target DIR huggingface_hub==X`) next to the one in the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BODY = (
    b'[[{"label":"POSITIVE","score":0.9998695850372314},{"label":"NEGATIVE","score":0.0001304351753788069}]]'
)
TEXT = "I love this movie"
CONCURRENCY = 64
RESULTS = Path(__file__).resolve().parent / "results" / "client_overhead.json"


# ---- the server ---------------------------------------------------------------------------------


def serve(port: int) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(BODY),
        BODY,
    )
    empty = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head = self.buffer[:end].lower()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.startswith(b"content-length:"):
                        length = int(line[15:])
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                self.transport.write(response if head.startswith(b"post") else empty)  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# ---- the contenders -----------------------------------------------------------------------------


def make_sync(name: str, url: str):  # type: ignore[no-untyped-def]
    if name == "httpx":
        import httpx

        client = httpx.Client()
        return lambda: client.post(url, json={"inputs": TEXT}).json()
    if name == "inferd":
        from inferd import InferenceClient
    else:
        from huggingface_hub import InferenceClient  # type: ignore[no-redef]
    client = InferenceClient(model=url)
    return lambda: client.text_classification(TEXT)


def make_async(name: str, url: str):  # type: ignore[no-untyped-def]
    if name == "httpx":
        import httpx

        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY))

        async def call():  # type: ignore[no-untyped-def]
            return (await client.post(url, json={"inputs": TEXT})).json()

        return call
    if name == "inferd":
        from inferd import AsyncInferenceClient
    else:
        from huggingface_hub import AsyncInferenceClient  # type: ignore[no-redef]
    aclient = AsyncInferenceClient(model=url)
    return lambda: aclient.text_classification(TEXT)


def worker(name: str, mode: str, url: str, calls: int) -> float:
    if mode == "sync":
        call = make_sync(name, url)
        for _ in range(20):
            call()
        start = time.perf_counter()
        for _ in range(calls):
            call()
        return calls / (time.perf_counter() - start)

    async def run() -> float:
        call = make_async(name, url)
        await asyncio.gather(*(call() for _ in range(CONCURRENCY)))

        async def lane(n: int) -> None:
            for _ in range(n):
                await call()

        start = time.perf_counter()
        await asyncio.gather(*(lane(calls // CONCURRENCY) for _ in range(CONCURRENCY)))
        return (calls // CONCURRENCY) * CONCURRENCY / (time.perf_counter() - start)

    return asyncio.run(run())


# ---- the orchestra ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_worker(name: str, mode: str, url: str, calls: int, env: dict[str, str]) -> tuple[float, str]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--mode", mode, "--url", url, "--calls", str(calls)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"{name}/{mode} failed:\n{out.stderr[-2000:]}")
    rate, version = out.stdout.strip().splitlines()[-1].split()
    return float(rate), version


def version_of(name: str) -> str:
    if name == "httpx":
        import httpx

        return str(httpx.__version__)
    if name == "inferd":
        import inferd

        return str(inferd.__version__)
    import huggingface_hub

    return str(huggingface_hub.__version__)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hf-path", help="a directory holding another huggingface_hub to compare with")
    parser.add_argument("--worker")
    parser.add_argument("--mode")
    parser.add_argument("--url")
    parser.add_argument("--serve", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.worker:
        name = "huggingface_hub" if args.worker.startswith("huggingface_hub") else args.worker
        rate = worker(name, args.mode, args.url, args.calls)
        print(f"{rate:.1f} {version_of(name)}")
        return

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_ENDPOINT": base, "HF_INFERENCE_ENDPOINT": base, "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    contenders: dict[str, dict[str, str]] = {"inferd": env, "huggingface_hub": env, "httpx": env}
    if args.hf_path:
        contenders["huggingface_hub@hf-path"] = {**env, "PYTHONPATH": args.hf_path}
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"{base}/models/bench-model"
        load_before = os.getloadavg()
        rates: dict[str, dict[str, list[float]]] = {n: {"sync": [], "async": []} for n in contenders}
        versions: dict[str, str] = {}
        for _ in range(args.rounds):  # interleaved, so a burst of load on the shared machine hits everyone
            for mode in ("sync", "async"):
                for name, name_env in contenders.items():
                    calls = args.calls * (2 if mode == "async" else 1)
                    rate, versions[name] = run_worker(name, mode, url, calls, name_env)
                    rates[name][mode].append(rate)
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait()

    medians = {n: {m: statistics.median(v) for m, v in modes.items()} for n, modes in rates.items()}
    report: dict[str, object] = {
        "calls": args.calls,
        "rounds": args.rounds,
        "concurrency_async": CONCURRENCY,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "versions": versions,
        "calls_per_s": medians,
        "all_rounds": rates,
        "ratios": {},
    }
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"{'client':<28}{'version':<10}{'sync calls/s':>14}{'async calls/s':>15}")
    for name, modes in medians.items():
        print(f"{name:<28}{versions[name]:<10}{modes['sync']:>14.0f}{modes['async']:>15.0f}")
    ratios: dict[str, dict[str, float]] = {}
    for other in (n for n in contenders if n != "inferd"):
        ratios[f"inferd/{other}"] = {m: medians["inferd"][m] / medians[other][m] for m in ("sync", "async")}
        print(
            f"inferd / {other:<20} sync {ratios[f'inferd/{other}']['sync']:.2f}x   async {ratios[f'inferd/{other}']['async']:.2f}x"
        )
    report["ratios"] = ratios
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
