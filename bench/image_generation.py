"""Seconds per image of the diffusers backend on the tiny random Stable Diffusion pipeline, per step count.

    python bench/image_generation.py
    python bench/image_generation.py --steps 1 4 16 --batch 1 4 --size 64 128 --repeats 3

The pipeline is tests/fixtures/tiny_pipelines.py's (UNet of 4/8 channels, VAE halving the size, 2-layer CLIP
text encoder): no text-to-image weights are installable here, so this measures the backend and diffusers'
per-call and per-step overhead, not a real model's arithmetic. Each configuration runs `model.predict` in
process (the server adds one thread hop and PNG encoding). A least-squares line t = fixed + per_step x steps
per (size, batch) splits the time into what every call pays once (prompt encoding, VAE decode, set-up) and
what each denoising step costs (the UNet and the scheduler), which says what dominates.
Writes bench/results/image_generation.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("INFERD_TORCH_THREADS", "1")

from _harness import machine_info, print_table, wait_for_quiet, write_results  # noqa: E402

PROMPT = "An astronaut riding a horse on the moon."


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, per_step) of the least-squares line through (steps, seconds)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in points) / (sum((x - mx) ** 2 for x in xs) or 1)
    return my - slope * mx, slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--size", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration; the median is kept")
    args = parser.parse_args()

    from fixtures.tiny_pipelines import build_tiny_stable_diffusion
    from inferd.backends import get_backend
    from inferd.catalogue import ModelEntry

    load_average = wait_for_quiet()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = build_tiny_stable_diffusion(Path(tmp) / "tiny-sd")
        built_s = time.perf_counter() - started
        entry = ModelEntry("tiny/sd", ("text-to-image",), "diffusers", "path:x", options={"max_steps": 1000})
        started = time.perf_counter()
        model = get_backend("diffusers").load(entry, str(folder))
        load_s = time.perf_counter() - started
        model.predict("text-to-image", [PROMPT], {"num_inference_steps": 1})  # warm-up: first-call set-up
        rows = []
        for size in args.size:
            for batch in args.batch:
                points = []
                for steps in args.steps:
                    params = {"num_inference_steps": steps, "height": size, "width": size, "seed": 0}
                    times = []
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        model.predict("text-to-image", [PROMPT] * batch, params)
                        times.append(time.perf_counter() - t0)
                    seconds = statistics.median(times)
                    points.append((steps, seconds))
                    rows.append(
                        {
                            "size": f"{size}x{size}",
                            "batch": batch,
                            "steps": steps,
                            "ms_per_call": round(seconds * 1000, 1),
                            "ms_per_image": round(seconds * 1000 / batch, 1),
                        }
                    )
                fixed, per_step = fit(points)
                rows.append(
                    {
                        "size": f"{size}x{size}",
                        "batch": batch,
                        "steps": "fit",
                        "fixed_ms_per_image": round(fixed * 1000 / batch, 2),
                        "step_ms_per_image": round(per_step * 1000 / batch, 2),
                    }
                )
    print(f"tiny pipeline built in {built_s:.1f} s, loaded in {load_s:.1f} s")
    print_table(
        rows,
        ["size", "batch", "steps", "ms_per_call", "ms_per_image", "fixed_ms_per_image", "step_ms_per_image"],
    )
    fits = [r for r in rows if r["steps"] == "fit"]
    notes = [
        f"{f['size']} batch {f['batch']}: {f['fixed_ms_per_image']} ms per image once (prompt encoding, VAE "
        f"decode, set-up) + {f['step_ms_per_image']} ms per image per denoising step (UNet + scheduler)"
        for f in fits
    ]
    notes.append(
        "What dominates: the denoising steps (the UNet) from a few steps up; the fixed part is the cost of a "
        "1-step image. Batching shares the per-call overhead, which matters only while the model is this small."
    )
    path = write_results(
        "image_generation",
        {
            "model": "tiny random Stable Diffusion (tests/fixtures/tiny_pipelines.py), in process, "
            f"{os.environ['INFERD_TORCH_THREADS']} torch thread(s)",
            "notes": notes,
            "machine": machine_info(["diffusers", "torch", "transformers"]),
            "load_average_at_start": load_average,
            "torch_threads": os.environ["INFERD_TORCH_THREADS"],
            "build_s": round(built_s, 2),
            "load_s": round(load_s, 2),
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
