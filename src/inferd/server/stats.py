"""Counters and timings the engine reports, for the app to publish (Prometheus /metrics, x-*-time headers).

The engine calls the hook methods below; this default keeps plain sums and counts per (model, task). An app that
wants Prometheus objects subclasses `EngineStats` and overrides the hooks (calling super() keeps the sums), or
reads `snapshot()` at scrape time. Hooks run on the event loop and must be cheap.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

# Batch sizes are reported as counts per bucket (upper bounds), like a Prometheus histogram.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class Timing:
    """One request's split of time, filled in by Engine.predict when set in `engine.REQUEST_TIMING`.

    batch_size stays 0 when the request never reached a batch (refused, still loading...)."""

    queue_s: float = 0.0
    inference_s: float = 0.0
    batch_size: int = 0


class EngineStats:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.errors: dict[tuple[str, str, str], int] = defaultdict(int)  # (model, task, error_type)
        self.request_seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.batches: dict[tuple[str, str], int] = defaultdict(int)
        self.batch_items: dict[tuple[str, str], int] = defaultdict(int)
        self.batch_sizes: dict[tuple[str, str], list[int]] = defaultdict(
            lambda: [0] * (len(BATCH_BUCKETS) + 1)
        )
        self.inference_seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.queue_seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.queued_requests: dict[tuple[str, str], int] = defaultdict(int)
        self.loads: dict[tuple[str, bool], int] = defaultdict(int)
        self.load_seconds: dict[str, float] = {}
        self.generations: dict[str, int] = defaultdict(int)
        self.generation_seconds: dict[str, float] = defaultdict(float)

    # ---- hooks --------------------------------------------------------------------------------------------
    def request(self, model_id: str, task: str, seconds: float, error_type: str | None) -> None:
        self.requests[model_id, task] += 1
        self.request_seconds[model_id, task] += seconds
        if error_type is not None:
            self.errors[model_id, task, error_type] += 1

    def batch(self, model_id: str, task: str, items: int, run_s: float, queue_s: list[float]) -> None:
        key = (model_id, task)
        self.batches[key] += 1
        self.batch_items[key] += items
        self.inference_seconds[key] += run_s
        self.queue_seconds[key] += sum(queue_s)
        self.queued_requests[key] += len(queue_s)
        bucket = next((i for i, b in enumerate(BATCH_BUCKETS) if items <= b), len(BATCH_BUCKETS))
        self.batch_sizes[key][bucket] += 1

    def load(self, model_id: str, seconds: float, ok: bool) -> None:
        self.loads[model_id, ok] += 1
        if ok:
            self.load_seconds[model_id] = seconds

    def generation(self, model_id: str, seconds: float) -> None:
        self.generations[model_id] += 1
        self.generation_seconds[model_id] += seconds

    # ---- reading ------------------------------------------------------------------------------------------
    def mean_batch_s(self, model_id: str) -> float:
        """Mean run time of a batch of this model (1.0 when unknown): the base of Retry-After on a 429."""
        runs = sum(n for (m, _), n in self.batches.items() if m == model_id)
        seconds = sum(s for (m, _), s in self.inference_seconds.items() if m == model_id)
        return seconds / runs if runs else 1.0

    def mean_generation_s(self, model_id: str) -> float:
        n = self.generations.get(model_id, 0)
        return self.generation_seconds[model_id] / n if n else 1.0

    def snapshot(self) -> dict[str, Any]:
        def rows(d: dict[Any, Any]) -> list[list[Any]]:
            return [[*k, v] if isinstance(k, tuple) else [k, v] for k, v in d.items()]

        return {
            name: rows(getattr(self, name))
            for name in (
                "requests",
                "errors",
                "request_seconds",
                "batches",
                "batch_items",
                "batch_sizes",
                "inference_seconds",
                "queue_seconds",
                "queued_requests",
                "loads",
                "load_seconds",
                "generations",
                "generation_seconds",
            )
        }
