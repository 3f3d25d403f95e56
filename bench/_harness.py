"""What every side-by-side benchmark shares: servers in subprocesses, one load generator, results and plots.

    with Server("inferd", [sys.executable, "-m", "inferd", "serve", "--port", "{port}"]) as srv:
        run = asyncio.run(closed_loop(post_json(srv.url + "/embed", {...}), concurrency=16, requests=800))
    print(run.summary())

The load generator is closed-loop: N clients each send a request, wait for the answer, send the next, until a
fixed number of requests or a time limit, whichever comes first (never an unbounded loop). Every peer in a
benchmark is measured by the same generator, from the same process, over keep-alive aiohttp connections.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LOGS = Path(os.environ.get("INFERD_BENCH_LOGS", "/tmp/inferd-bench-logs"))
# Peers whose pins clash with inferd's venv (infinity-emb wants numpy<2 and sentence-transformers 3) get their
# own venvs here; bench/peers/infinity.py --install creates it.
PEER_VENVS = Path(os.environ.get("INFERD_BENCH_VENVS", Path.home() / ".cache" / "inferd-bench"))

# Never let the model hub be asked for anything: every model here comes from an installed package.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


# ---- machine -------------------------------------------------------------------------------------------------
def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def wait_for_quiet(max_load: float = 1.5, max_wait_s: float = 1200, step_s: float = 60) -> float:
    """Wait (bounded) until the 1-minute load average is at most `max_load`; return the load when starting.

    Colleagues' test runs share these 2 cores; a measurement taken under their load measures them too."""
    deadline = time.monotonic() + max_wait_s
    load = load_average()
    while load > max_load and time.monotonic() < deadline:
        print(f"  load average {load} > {max_load}: waiting {step_s:g}s", flush=True)
        time.sleep(step_s)
        load = load_average()
    if load > max_load:
        print(f"  load average still {load} after {max_wait_s:g}s: measuring anyway (recorded)", flush=True)
    return load


def machine_info(packages: Iterable[str] = ()) -> dict[str, Any]:
    versions = {}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    commit = ""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
        "load_average_1m": load_average(),
        # below 0: run_all --nice gave the bench and its servers priority over other work on the machine
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "versions": versions,
    }


# ---- servers -------------------------------------------------------------------------------------------------
def inferd_serve(*preload: str, args: Sequence[str] = ()) -> list[str]:
    """`inferd serve` as every bench starts it: this venv's Python, the harness's port, `preload`ed models,
    warnings only (a log line per request would be measured as the server's work)."""
    cmd = [sys.executable, "-m", "inferd", "serve", "--port", "{port}", "--log-level", "warning", *args]
    return [*cmd, "--preload", *preload] if preload else cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess on 127.0.0.1 and a free port, up once `health` answers 200; stopped on exit.

    `cmd` may contain "{port}", replaced by the chosen port. Its output goes to LOGS/<name>.log."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        health: str = "/health",
        env: Mapping[str, str] | None = None,
        startup_s: float = 180,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.cmd = [c.replace("{port}", str(self.port)) for c in cmd]
        self.url = f"http://127.0.0.1:{self.port}"
        self.health = health
        self.env = {**os.environ, **OFFLINE_ENV, **(env or {})}
        self.startup_s = startup_s
        self.cwd = cwd or ROOT
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = LOGS / f"{name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> Server:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        # A session of its own so that stopping it also stops any worker processes it started.
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
        )
        log.close()
        started = time.monotonic()
        while time.monotonic() - started < self.startup_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + self.health, timeout=2) as r:
                    if r.status == 200:
                        self.startup_seconds = time.monotonic() - started
                        return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} not healthy after {self.startup_s:g}s: {self.tail()}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


# ---- load generator ------------------------------------------------------------------------------------------
Call = Callable[[Any, int], Awaitable[Any]]  # (aiohttp session, request index) -> anything (kept per request)


@dataclass
class Run:
    """One closed-loop run: per-request latencies (s) and whatever each call returned."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def per_s(self, items: float | None = None) -> float:
        return (self.requests if items is None else items) / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    def summary(self, items_per_request: int = 1) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "wall_s": round(self.wall_s, 3),
            "throughput": round(self.per_s(self.requests * items_per_request), 2),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "mean_ms": round(sum(self.latencies) / max(1, self.requests) * 1000, 2),
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


async def closed_loop(
    call: Call,
    *,
    concurrency: int,
    requests: int,
    max_seconds: float = 120,
    warmup: int = 0,
    timeout_s: float = 120,
    on_start: Callable[[], None] | None = None,
) -> Run:
    """`concurrency` clients share `requests` calls (after `warmup` calls not recorded), stopping early at
    `max_seconds`. A failed call is counted in `errors` with its message, not in the latencies."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    run = Run(concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Warm-up also opens the keep-alive connections, so connection setup is not measured.
        next_index = 0

        async def worker(limit: int, record: bool, deadline: float) -> None:
            nonlocal next_index
            while next_index < limit and time.monotonic() < deadline:
                i = next_index
                next_index += 1
                started = time.perf_counter()
                try:
                    out = await call(session, i)
                except Exception as exc:  # a failed request is a result, not a crash of the bench
                    if record:
                        run.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                if record:
                    run.latencies.append(time.perf_counter() - started)
                    run.outputs.append(out)

        if warmup:
            deadline = time.monotonic() + max_seconds
            await asyncio.gather(*(worker(warmup, False, deadline) for _ in range(min(concurrency, warmup))))
        next_index = 0
        if on_start is not None:
            on_start()
        started = time.perf_counter()
        deadline = time.monotonic() + max_seconds
        await asyncio.gather(*(worker(requests, True, deadline) for _ in range(concurrency)))
        run.wall_s = time.perf_counter() - started
    return run


def post_json(url: str, body: Callable[[int], Any]) -> Call:
    """A call that POSTs `body(i)` as JSON and reads the whole answer; a non-2xx status is an error."""

    async def call(session: Any, i: int) -> int:
        async with session.post(url, json=body(i)) as r:
            data = await r.read()
            if r.status >= 300:
                raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
            return len(data)

    return call


async def sse_events(response: Any) -> Any:
    """`data:` payloads of a server-sent-event stream, one per event (spec: lines, blank line ends an event)."""
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


# ---- results -------------------------------------------------------------------------------------------------
def write_results(name: str, payload: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)
    return path


def _jsonable(x: Any) -> Any:
    if hasattr(x, "__dataclass_fields__"):
        return asdict(x)
    if isinstance(x, Path):
        return str(x)
    return str(x)


def goal(what: str, measured: Any, target: str, met: bool) -> dict[str, Any]:
    """One row of a bench's goals table (issue 5's targets), as docs/benchmarks.md shows them."""
    return {"goal": what, "measured": measured, "target": target, "met": bool(met)}


def ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 3)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table (also valid Markdown), printed and returned."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)
    ]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
        *("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |" for row in cells),
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


def plot_grouped(
    path: Path,
    title: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    panel: str,
    x: str,
    series: str,
    metrics: Sequence[tuple[str, str]],
) -> Path:
    """A grid of grouped bar charts: one row of panels per value of `panel`, one column per metric
    (key, axis label); bars grouped by `x`, one colour per `series`. Missing values leave a gap. Without
    matplotlib (the `bench` extra) no chart is drawn: the JSON and the printed tables hold every figure."""
    try:
        import matplotlib
    except ImportError:
        print(f"no chart {path.name}: matplotlib is not installed (pip install -e '.[bench]')")
        return path

    matplotlib.use("Agg")  # no display here
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(r[panel] for r in rows))
    xs = list(dict.fromkeys(r[x] for r in rows))
    names = list(dict.fromkeys(r[series] for r in rows))
    fig, axes = plt.subplots(
        len(panels), len(metrics), figsize=(5.5 * len(metrics), 3.4 * len(panels)), squeeze=False
    )
    width = 0.8 / max(1, len(names))
    for pi, p in enumerate(panels):
        for mi, (key, label) in enumerate(metrics):
            ax = axes[pi][mi]
            for si, name in enumerate(names):
                values = []
                for xv in xs:
                    found = [r.get(key) for r in rows if r[panel] == p and r[x] == xv and r[series] == name]
                    values.append(found[0] if found and found[0] is not None else float("nan"))
                ax.bar([i + si * width for i in range(len(xs))], values, width, label=name)
            ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(xs))], [str(v) for v in xs])
            ax.set_xlabel(x)
            ax.set_ylabel(label)
            ax.set_title(f"{p}: {label}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            if key.endswith("_ms"):  # latencies span orders of magnitude
                ax.set_yscale("log")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def python_exe() -> str:
    """The interpreter running the bench: servers start with it so they see the same installed packages."""
    return sys.executable


# ---- one sweep: every system x workload x concurrency ---------------------------------------------------------
@dataclass
class ServerSpec:
    """How to start a system and what one request to it looks like for a workload and an input item."""

    cmd: Sequence[str]
    route: Callable[[str], str]  # workload -> path
    body: Callable[[str, Any], Any]  # (workload, item) -> JSON body
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    only: tuple[str, ...] = ()  # the workloads it serves, when not all (a one-model app)


def sweep(
    systems: Mapping[str, ServerSpec],
    workloads: Mapping[str, Sequence[Any]],
    *,
    concurrency: Sequence[int],
    seconds: float,
    max_requests: int,
    labels: Mapping[str, str] | None = None,
    profile: Callable[[str, str, int], Path | None] | None = None,
    rounds: int = 1,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Start every system, then run each workload at each concurrency against each system in turn.

    Interleaved (workload, concurrency, then system, the order of systems rotating every round) rather than
    one system after the other: on a shared machine the load drifts, and the systems compared in a cell are
    then measured minutes apart at most. With several rounds a cell keeps its best round, the one least
    disturbed by the machine's other work. A row per cell: system, workload (its label), Run.summary() and
    the load average at that moment. A system that fails to start is a note, not an abort.
    `profile(system, workload, c)` may name a file: py-spy then samples that server during that run."""
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    notes: list[str] = []
    labels = labels or {}
    # The servers run in sessions of their own: a SIGTERM to the bench must still stop them (via the stack).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        for name, spec in systems.items():
            slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
            try:
                srv = stack.enter_context(Server(slug, spec.cmd, env=spec.env, startup_s=300, cwd=spec.cwd))
            except RuntimeError as exc:
                notes.append(f"{name} could not be measured: {exc}")
                print(f"== {name} FAILED: {exc}", flush=True)
                continue
            servers[name] = srv
            print(
                f"== {name} up in {srv.startup_seconds:.1f}s (pid {srv.pid}, log {srv.log_path})", flush=True
            )
        names = list(servers)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)] if names else []
            for workload, items in workloads.items():
                for c in concurrency:
                    for name in order:
                        if systems[name].only and workload not in systems[name].only:
                            continue
                        row = _one_run(
                            name,
                            systems[name],
                            servers[name],
                            workload,
                            items,
                            c,
                            seconds,
                            max_requests,
                            profile,
                        )
                        row = {
                            "system": name,
                            "workload": labels.get(workload, workload),
                            **row,
                            "round": r + 1,
                        }
                        key = (name, workload, c)
                        if key not in rows or row["throughput"] > rows[key]["throughput"]:
                            rows[key] = row
                        print(
                            f"   r{r + 1} {workload:6} c={c:<3} {name[:34]:34} {row['throughput']:8.1f}/s"
                            f"  p50 {row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms  err {row['errors']}"
                            f"  load {row['load_average_1m']}",
                            flush=True,
                        )
                        if row["errors"]:
                            print(f"   first error: {row['first_error']}", flush=True)
    ordered = [rows[(n, w, c)] for n in systems for w in workloads for c in concurrency if (n, w, c) in rows]
    return ordered, notes


def _one_run(
    name: str,
    spec: ServerSpec,
    srv: Server,
    workload: str,
    items: Sequence[Any],
    c: int,
    seconds: float,
    max_requests: int,
    profile: Callable[[str, str, int], Path | None] | None,
) -> dict[str, Any]:
    url = srv.url + spec.route(workload)
    call = post_json(url, lambda i: spec.body(workload, items[i % len(items)]))
    out = profile(name, workload, c) if profile else None
    spies: list[subprocess.Popen[bytes]] = []
    cpu_at_start: list[float] = []

    def on_start() -> None:
        cpu_at_start.append(process_cpu_s(srv.pid))
        cpu_at_start.append(time.process_time())  # the load generator's own (this process)
        if out is not None:  # after the warm-up: only the measured requests are sampled
            spies.append(start_profile(srv.pid, seconds, out))

    run = asyncio.run(
        closed_loop(
            call,
            concurrency=c,
            requests=max_requests,
            max_seconds=seconds,
            warmup=max(2 * c, 16),
            on_start=on_start,
        )
    )
    row: dict[str, Any] = {**run.summary(), "load_average_1m": load_average()}
    if cpu_at_start and run.requests:
        # CPU the server burnt per request, all threads: unlike throughput, hardly moved by other work on the
        # machine (except spin-waiting threads, which are a real cost too).
        row["cpu_ms_per_req"] = round((process_cpu_s(srv.pid) - cpu_at_start[0]) / run.requests * 1000, 2)
        # aiohttp's CPU in this process, taken from the same 2 cores as the server's (wrk's, for comparison, is
        # ~0.04 ms: bench/embeddings_wrk.py).
        row["loadgen_cpu_ms_per_req"] = round(
            (time.process_time() - cpu_at_start[1]) / run.requests * 1000, 2
        )
    if spies and out is not None:
        spies[0].wait(timeout=seconds + 60)
        row["profile"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    return row


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- profiles ------------------------------------------------------------------------------------------------
def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy samples `pid` (and its threads, native frames off) for `seconds`, writing collapsed stacks."""
    out.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("py-spy")
    cmd = [str(exe), "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200"]
    cmd += ["--format", "raw", "--output", str(out), "--threads", "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hot_spots(collapsed: Path, top: int = 25) -> list[tuple[str, float, float]]:
    """(function, self %, total %) from py-spy's collapsed stacks, by self time; idle waits included, so the
    percentages are of all samples of all threads."""
    self_n: dict[str, int] = {}
    total_n: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
        for f in set(frames):
            total_n[f] = total_n.get(f, 0) + n
    ranked = sorted(self_n.items(), key=lambda kv: -kv[1])[:top]
    return [(f, round(100 * n / samples, 1), round(100 * total_n[f] / samples, 1)) for f, n in ranked]
