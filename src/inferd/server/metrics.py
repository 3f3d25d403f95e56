"""Prometheus metrics (TGI-like names, inferd_ prefix) and the per-request observation that feeds them."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .engine import REQUEST_TIMING
from .stats import BATCH_BUCKETS, Timing

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LABELS = ("model", "task")


class Metrics:
    """One registry per app, so several apps (tests) never share counters."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "inferd_request", "Inference requests by outcome.", (*_LABELS, "status"), registry=r
        )
        self.duration = Histogram(
            "inferd_request_duration_seconds",
            "Time from request to answer.",
            _LABELS,
            buckets=_BUCKETS,
            registry=r,
        )
        self.queue = Histogram(
            "inferd_request_queue_duration_seconds",
            "Time spent queued.",
            _LABELS,
            buckets=_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "inferd_request_inference_duration_seconds",
            "Time spent in the model.",
            _LABELS,
            buckets=_BUCKETS,
            registry=r,
        )
        self.generated_tokens = Histogram(
            "inferd_request_generated_tokens",
            "Tokens generated per request.",
            _LABELS,
            buckets=(1, 8, 32, 128, 512, 2048),
            registry=r,
        )
        self.in_flight = Gauge("inferd_requests_in_flight", "Requests being answered.", registry=r)

    def watch_engine(self, stats: Any) -> None:
        """Publish the engine's own counters (batches, batch sizes, loads) at scrape time."""
        self.registry.register(_EngineCollector(stats))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, model: str, task: str) -> Observation:
        return Observation(self, model, task)


class Observation:
    """Times one request; `headers()` gives the x-compute-* headers, `done(status)` records it."""

    def __init__(self, metrics: Metrics, model: str, task: str) -> None:
        self.metrics, self.model, self.task = metrics, model, task
        self.start = time.perf_counter()
        self.timing = Timing()
        REQUEST_TIMING.set(self.timing)  # Engine.predict fills it in (queue/inference split)
        self.generated_tokens: int | None = None
        self._done = False
        metrics.in_flight.inc()

    @property
    def reported(self) -> bool:
        """The engine ran this request in a batch and said where its time went."""
        return self.timing.batch_size > 0

    def headers(self, compute_type: str = "cpu") -> dict[str, str]:
        out = {"x-compute-time": f"{time.perf_counter() - self.start:.3f}", "x-compute-type": compute_type}
        if self.reported:
            out["x-queue-time"] = f"{self.timing.queue_s:.3f}"
            out["x-inference-time"] = f"{self.timing.inference_s:.3f}"
        return out

    def discard(self) -> None:
        """Not an inference request (catalogue, status...): leave it out of the request metrics."""
        if not self._done:
            self._done = True
            self.metrics.in_flight.dec()

    def done(self, status: int) -> None:
        if self._done:
            return
        self._done = True
        m, labels = self.metrics, (self.model or "-", self.task or "-")
        m.in_flight.dec()
        m.requests.labels(*labels, str(status)).inc()
        m.duration.labels(*labels).observe(time.perf_counter() - self.start)
        if self.reported:
            m.queue.labels(*labels).observe(self.timing.queue_s)
            m.inference.labels(*labels).observe(self.timing.inference_s)
        if self.generated_tokens is not None:
            m.generated_tokens.labels(*labels).observe(self.generated_tokens)


class _EngineCollector:
    """inferd.server.stats.EngineStats as Prometheus families, read when /metrics is scraped."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        s = self.stats
        batches = CounterMetricFamily("inferd_batch", "Batches run.", labels=_LABELS)
        items = CounterMetricFamily("inferd_batch_items", "Inputs run in batches.", labels=_LABELS)
        for (model, task), n in dict(s.batches).items():
            batches.add_metric([model, task], n)
            items.add_metric([model, task], s.batch_items.get((model, task), 0))
        sizes = HistogramMetricFamily("inferd_batch_size", "Inputs per batch.", labels=_LABELS)
        for (model, task), counts in dict(s.batch_sizes).items():
            bounds = [str(b) for b in BATCH_BUCKETS] + ["+Inf"]
            cumulative = list(itertools.accumulate(counts))
            total = sum(c * b for c, b in zip(counts, (*BATCH_BUCKETS, BATCH_BUCKETS[-1]), strict=False))
            sizes.add_metric([model, task], list(zip(bounds, cumulative, strict=False)), sum_value=total)
        loads = CounterMetricFamily("inferd_model_load", "Model loads by outcome.", labels=["model", "ok"])
        for (model, ok), n in dict(s.loads).items():
            loads.add_metric([model, str(ok).lower()], n)
        yield from (batches, items, sizes, loads)
