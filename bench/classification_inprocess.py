"""Classification in process, no HTTP: inferd's transformers backend against the raw batched pipeline.

    python bench/classification_inprocess.py
    python bench/classification_inprocess.py --baseline-src /tmp/old/src   # also an older inferd checkout
    python bench/classification_inprocess.py --tasks token-classification --rounds 3 --seconds 5

Each system runs in its own process (fresh imports, its own thread pools), one after the other, round after round
(interleaved, so that a change in the machine's load hits every system alike); each cell keeps its best round.
Systems: `inferd` (this checkout's `Model.predict` on a batch, as the server's batcher calls it), `baseline`
(the same from `--baseline-src`), and `raw pipeline` (`transformers.pipeline(...)(texts, batch_size=N)` on
torch with 2 threads, the limit bench/classification.py compares the server with). The models are
bench/classification.py's (MiniLM's real encoder with a seeded random head). Reports items/s and CPU
milliseconds per item (all the process's threads); writes bench/results/classification_inprocess.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import load_average, machine_info, print_table, write_results  # noqa: E402

TASKS = ("text-classification", "token-classification")
PARAMS = {"text-classification": {}, "token-classification": {"aggregation_strategy": "simple"}}


def measure(system: str, task: str, folder: str, batch: int, seconds: float) -> dict[str, float]:
    """items/s and CPU ms per item of one system on batches of `batch` distinct short texts."""
    from embeddings import make_texts

    texts = make_texts("short")
    if system == "raw pipeline":
        import torch
        from transformers import pipeline

        torch.set_num_threads(2)
        pipe = pipeline(task, model=folder, device="cpu")
        kwargs = PARAMS[task] or {"top_k": None}

        def call(chunk: list[str]) -> object:
            return pipe(chunk, batch_size=len(chunk), **kwargs)
    else:
        from inferd.backends import get_backend
        from inferd.catalogue import ModelEntry

        model = get_backend("transformers").load(
            ModelEntry("bench", (task,), "transformers", "path:x"), folder
        )

        def call(chunk: list[str]) -> object:
            return model.predict(task, chunk, PARAMS[task])

    for _ in range(3):
        call(texts[:batch])
    done, cpu, started = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - started < seconds:
        start = done % len(texts)
        chunk = texts[start : start + batch]
        chunk += texts[: batch - len(chunk)]
        call(chunk)
        done += batch
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"items_per_s": round(done / wall, 1), "cpu_ms_per_item": round(1000 * cpu / done, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4, help="time per system, task and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", help="another inferd checkout's src/ to measure as `baseline`")
    parser.add_argument("--one", nargs=3, metavar=("SYSTEM", "TASK", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.batch, args.seconds)))
        return

    from classification import build_models

    folders, what = build_models(tiny=False)
    src = str(Path(__file__).resolve().parents[1] / "src")
    systems = {"inferd": src, "raw pipeline": src}
    if args.baseline_src:
        systems["baseline"] = str(Path(args.baseline_src).resolve())
    info = machine_info(["inferd", "torch", "transformers", "onnxruntime"])
    print(f"model: {what}; load average {load_average()} at start", flush=True)
    best: dict[tuple[str, str], dict[str, float]] = {}
    for round_ in range(1, args.rounds + 1):
        for task in args.tasks:
            for system, path in systems.items():
                env = {**os.environ, "PYTHONPATH": path}
                out = subprocess.run(
                    [sys.executable, __file__, "--batch", str(args.batch), "--seconds", str(args.seconds)]
                    + ["--one", system, task, str(folders[task])],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                )
                row = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"round {round_} {task:22} {system:14} {row}", flush=True)
                key = (task, system)
                if key not in best or row["items_per_s"] > best[key]["items_per_s"]:
                    best[key] = row
    rows = []
    for (task, system), row in best.items():
        raw = best[(task, "raw pipeline")]["items_per_s"]
        rows.append({"workload": task, "system": system, **row, "vs_raw": round(row["items_per_s"] / raw, 3)})
    table = print_table(rows, ["workload", "system", "items_per_s", "cpu_ms_per_item", "vs_raw"])
    write_results(
        "classification_inprocess",
        {
            "benchmark": "classification_inprocess",
            "command": "python bench/" + " ".join([Path(__file__).name, *sys.argv[1:]]),
            "model": what,
            "unit": f"items/s at batch {args.batch}, best of {args.rounds} interleaved rounds",
            "machine": info,
            "load_average_after": load_average(),
            "rows": rows,
            "table": table,
        },
    )


if __name__ == "__main__":
    main()
