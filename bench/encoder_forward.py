"""MiniLM's forward pass alone, in process: the ONNX graph inferd builds, variants of it, and ONNX Runtime settings.

    python bench/encoder_forward.py                       # every variant, short and 128-token texts, batch 1/16/32
    python bench/encoder_forward.py --variants plain optimizer --batches 16 --rounds 5
    python bench/encoder_forward.py --rss optimizer       # peak and steady RSS of building one variant
    python bench/encoder_forward.py --padding             # mixed-length batches: how encode() splits them
    python bench/encoder_forward.py --cost                # CPU cost of one forward pass by rows x tokens

No HTTP, no batching, no tokenizing in the timed part: each cell runs `session.run` on the same token ids (the
model's own tokenizer, `make_texts` of bench/embeddings.py: ~12-token "short" texts and exactly 128-token "long"
ones) until `--seconds` have passed. The variants run interleaved, in a rotated order each round, so that the
shared machine's load falls on all of them alike; each cell reports the best and the median round.

Variants (ONNX Runtime intra-op threads 2 and no spinning unless named):
  plain            `BertSession()` as inferd runs it by default: standard ops, ORT_ENABLE_ALL
  optimizer        `plain` passed through onnxruntime.transformers.optimizer.optimize_model(model_type="bert"):
                   its fusions (SkipLayerNormalization, BiasGelu; Attention needs the mask written the way torch's
                   export writes it, which branch perfemb at 173c062 had, with a graph writing the contrib ops
                   directly: 6-17 % more CPU per text than plain on this AMD EPYC, so neither was kept)
  optimizer-raw-mask  the same with the raw 2-D attention mask instead of ORT's 1-D sequence-length index
  plain-extended   ORT_ENABLE_EXTENDED instead of ORT_ENABLE_ALL
  plain-1-thread   one intra-op thread
  plain-spinning   two intra-op threads that spin while idle (ORT's default; inferd turns it off)
  plain-dynamic-block  ORT's `session.dynamic_block_base` 4: work cut into shrinking blocks that idle threads take
  infinity-onnx    the model.onnx that infinity-emb's `--engine optimum` exports (bench/peers/infinity.py builds it
                   in /tmp/inferd-bench-models/minilm-infinity-onnx), plain ORT session, same threads: a reference
Writes bench/results/encoder_forward.json.

`--padding` times the whole `_OrtBertEncoder.encode` (tokenizing, padding, forward passes, pooling) on batches
of mixed lengths, with its chunking swapped: "runs-of-16" (sorted by length, cut every 16 texts, inferd before
2026-12-06) against `length_chunks` (sorted, cut where padding costs more than another forward pass), and
`length_chunks` with a call 3x cheaper or dearer than `_CALL_TOKENS` as a check of its one constant. `--cost` fits that constant.
Writes bench/results/encoder_padding.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _harness import load_average, machine_info, write_results  # noqa: E402
from embeddings import make_texts, model_folder  # noqa: E402

INFINITY_ONNX = Path("/tmp/inferd-bench-models/minilm-infinity-onnx/model.onnx")
Forward = Callable[[np.ndarray, np.ndarray], Any]


def _weights_and_config() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors.numpy import load_file

    folder = Path(model_folder())
    return load_file(str(folder / "model.safetensors")), json.loads((folder / "config.json").read_text())


def _options(level: str = "all", threads: int = 2, spinning: bool = False, block_base: int = 0) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if (
        block_base
    ):  # smaller work blocks handed out as threads free up: a thread preempted by a neighbour stalls less
        options.add_session_config_entry("session.dynamic_block_base", str(block_base))
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    return options


def _run(session: Any) -> Forward:
    names = {i.name for i in session.get_inputs()}

    def forward(ids: np.ndarray, mask: np.ndarray) -> Any:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return session.run(None, feeds)

    return forward


def _bert_session(
    level: str = "all", threads: int = 2, spinning: bool = False, block_base: int = 0
) -> Forward:
    """inferd's own graph (`bert_graph`, as BertSession builds it) in a session with these options."""
    import onnxruntime as ort

    from inferd.backends._bert_onnx import bert_graph

    weights, config = _weights_and_config()
    graph, external = bert_graph(weights, config)
    options = _options(level, threads, spinning, block_base)
    values = {name: ort.OrtValue.ortvalue_from_numpy(a) for name, a in external.items()}
    options.add_external_initializers(list(values), list(values.values()))
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    forward = _run(session)
    forward.keep = (values, external)  # type: ignore[attr-defined]  # ORT reads these buffers: keep them alive
    return forward


def _optimizer(raw_mask: bool) -> Forward:
    """The plain graph through ORT's transformer optimizer (weights embedded: the optimizer reads them)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from inferd.backends._bert_onnx import bert_graph

    weights, config = _weights_and_config()
    graph, external = bert_graph(weights, config)
    model = onnx.load_from_string(graph)
    for init in model.graph.initializer:
        if init.name in external:
            init.CopyFrom(numpy_helper.from_array(external[init.name], init.name))
    fusion = FusionOptions("bert")
    fusion.use_raw_attention_mask(raw_mask)
    heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
    optimized = optimize_model(
        model,
        model_type="bert",
        num_heads=heads,
        hidden_size=hidden,
        optimization_options=fusion,
        opt_level=0,
    )
    print(f"  optimizer fused: {optimized.get_fused_operator_statistics()}", flush=True)
    session = ort.InferenceSession(
        optimized.model.SerializeToString(), _options(), providers=["CPUExecutionProvider"]
    )
    return _run(session)


def _infinity() -> Forward | None:
    if not INFINITY_ONNX.is_file():
        print(
            f"  infinity-onnx skipped: {INFINITY_ONNX} is absent (bench/peers/infinity.py --install --optimum)"
        )
        return None
    import onnxruntime as ort

    return _run(ort.InferenceSession(str(INFINITY_ONNX), _options(), providers=["CPUExecutionProvider"]))


VARIANTS: dict[str, Callable[[], Forward | None]] = {
    "plain": lambda: _bert_session(),
    "optimizer": lambda: _optimizer(raw_mask=False),
    "optimizer-raw-mask": lambda: _optimizer(raw_mask=True),
    "plain-extended": lambda: _bert_session("extended"),
    "plain-1-thread": lambda: _bert_session(threads=1),
    "plain-spinning": lambda: _bert_session(spinning=True),
    "plain-dynamic-block": lambda: _bert_session(block_base=4),
    "infinity-onnx": _infinity,
}


def token_batches(batches: list[int]) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """(length, batch size) -> int64 ids and mask, padded to the batch's longest text."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_folder()) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    out = {}
    for kind in ("short", "long"):
        encodings = tok.encode_batch(make_texts(kind, max(batches)))
        for size in batches:
            rows = [e.ids for e in encodings[:size]]
            width = max(map(len, rows))
            ids = np.zeros((size, width), np.int64)
            mask = np.zeros((size, width), np.int64)
            for r, row in enumerate(rows):
                ids[r, : len(row)] = row
                mask[r, : len(row)] = 1
            out[kind, size] = (ids, mask)
    return out


def texts_per_second(
    forward: Forward, ids: np.ndarray, mask: np.ndarray, seconds: float
) -> tuple[float, float]:
    """Wall-clock texts/s, and CPU milliseconds per text (all the process's threads): on a shared machine the
    second hardly moves with the neighbours' load, the first does."""
    done, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        forward(ids, mask)
        done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            cpu = time.process_time() - cpu_start
            return done * len(ids) / elapsed, 1000 * cpu / (done * len(ids))


def rss_of(variant: str) -> dict[str, float]:
    """Build one variant and run one batch: peak RSS, and RSS once built (MB)."""

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    before = rss_mb()
    forward = VARIANTS[variant]()
    assert forward is not None
    gc.collect()
    ids, mask = token_batches([16])["long", 16]
    forward(ids, mask)
    return {
        "before_mb": round(before, 1),
        "after_build_and_one_batch_mb": round(rss_mb(), 1),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _encoder() -> Any:
    from inferd.backends.sentence_transformers import _OrtBertEncoder

    return _OrtBertEncoder(Path(model_folder()), threads=2)


def padding_batches() -> dict[str, list[str]]:
    """Batches as a server's batcher may form them from mixed traffic (seeded)."""
    short, long = make_texts("short", 64), make_texts("long", 64)
    rng = np.random.default_rng(0)
    words = [t.split() for t in long]
    mixed = [" ".join(words[i][: int(rng.integers(3, 110))]) for i in range(32)]
    return {
        "1 long + 15 short": [long[0], *short[:15]],
        "8 short + 16 long": [*short[:8], *long[:16]],
        "32 of 3-110 words": mixed,
        "32 short": short[:32],
        "16 long": long[:16],
    }


def compare_padding(rounds: int, seconds: float) -> list[dict[str, Any]]:
    from inferd.backends import sentence_transformers as st

    encoder = _encoder()
    todays = st.length_chunks

    def runs_of_16(lengths: Any, most: int = 16, call: int = 0) -> list[tuple[int, int]]:
        return [(i, min(i + 16, len(lengths))) for i in range(0, len(lengths), 16)]

    chunkers = {
        "runs-of-16": runs_of_16,
        "length_chunks": todays,
        "length_chunks-call-div3": lambda lengths: todays(lengths, call=st._CALL_TOKENS // 3),
        "length_chunks-call-x3": lambda lengths: todays(lengths, call=3 * st._CALL_TOKENS),
    }
    batches = padding_batches()
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {b: {c: [] for c in chunkers} for b in batches}

    def encode_with(chunker: Any) -> Forward:
        def encode(texts: Any, _: Any) -> Any:
            st.length_chunks = chunker
            try:
                return encoder.encode(texts, "right")
            finally:
                st.length_chunks = todays

        return encode

    names = list(chunkers)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for batch, texts in batches.items():
            for name in order:
                samples[batch][name].append(
                    texts_per_second(encode_with(chunkers[name]), texts, None, seconds)
                )
        print(f"round {r + 1}/{rounds} done, load {load_average()}", flush=True)
    print(
        f"\nencode() texts/s best / median of {rounds} rounds; CPU ms per text (median) and its ratio to runs-of-16"
    )
    print(f"{'batch':<20}" + "".join(f"{n:>34}" for n in names))
    rows = []
    for batch in batches:
        line, row = f"{batch:<20}", {"batch": batch}
        base_cpu = statistics.median(s[1] for s in samples[batch][names[0]])
        for name in names:
            rates, cpus = [s[0] for s in samples[batch][name]], [s[1] for s in samples[batch][name]]
            best, median, cpu = max(rates), statistics.median(rates), statistics.median(cpus)
            line += f"{best:>9.1f}/{median:>7.1f} {cpu:>6.2f}ms {cpu / base_cpu:>5.2f}x"
            row[name] = {
                "best": round(best, 2),
                "median": round(median, 2),
                "cpu_ms_per_text_median": round(cpu, 3),
            }
        print(line)
        rows.append(row)
    return rows


def fit_call_cost() -> dict[str, float]:
    """CPU ms of one forward pass over rows x tokens of random ids, fitted as a + b * rows * tokens."""
    forward = _bert_session()
    rng = np.random.default_rng(0)
    points = []
    for tokens in (8, 16, 32, 64):
        for rows in (1, 2, 4, 8, 16):
            ids = rng.integers(1000, 20000, (rows, tokens)).astype(np.int64)
            mask = np.ones_like(ids)
            _, cpu_per_row = texts_per_second(forward, ids, mask, 0.3)
            points.append((rows * tokens, cpu_per_row * rows))
            print(f"  {rows:>2} x {tokens:>3} tokens: {cpu_per_row * rows:7.2f} ms CPU", flush=True)
    # relative errors: the small calls, where the constant matters, weigh as much as the large ones
    design = np.array([[1.0 / y, x / y] for x, y in points])
    a, b = np.linalg.lstsq(design, np.ones(len(points)), rcond=None)[0]
    print(f"one call: {a:.2f} ms + {b:.4f} ms per padded token = {a / b:.1f} tokens' worth")
    return {
        "call_ms": round(float(a), 3),
        "ms_per_token": round(float(b), 5),
        "call_in_tokens": round(float(a / b), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16, 32])
    parser.add_argument("--lengths", nargs="+", default=["short", "long"], choices=["short", "long"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.6, help="per cell and round")
    parser.add_argument(
        "--rss", metavar="VARIANT", choices=list(VARIANTS), help="measure one variant's memory"
    )
    parser.add_argument("--padding", action="store_true", help="compare how encode() splits mixed batches")
    parser.add_argument("--cost", action="store_true", help="fit the CPU cost of one forward pass")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.rss:
        print(json.dumps({args.rss: rss_of(args.rss)}))
        return
    if args.cost:
        print(json.dumps(fit_call_cost()))
        return
    if args.padding:
        load_before = load_average()
        rows = compare_padding(args.rounds, args.seconds)
        payload = {
            "machine": machine_info(["onnxruntime", "tokenizers"]),
            "command": "python bench/encoder_forward.py " + " ".join(sys.argv[1:]),
            "load_average": {"before": load_before, "after": load_average()},
            "unit": "texts/s; cpu_ms_per_text",
            "rows": rows,
        }
        if not args.no_write:
            print(f"wrote {write_results('encoder_padding', payload)}")
        return

    load_before = load_average()
    forwards: dict[str, Forward] = {}
    for name in args.variants:
        print(f"building {name}", flush=True)
        started = time.perf_counter()
        forward = VARIANTS[name]()
        if forward is not None:
            forwards[name] = forward
            print(f"  built in {time.perf_counter() - started:.2f} s", flush=True)
    inputs = token_batches(args.batches)
    cells = [(kind, size) for kind in args.lengths for size in args.batches]
    for cell in cells:  # warm-up: first runs allocate
        for forward in forwards.values():
            forward(*inputs[cell])
    samples: dict[tuple[str, int], dict[str, list[tuple[float, float]]]] = {
        c: {n: [] for n in forwards} for c in cells
    }
    names = list(forwards)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for cell in cells:
            for name in order:
                samples[cell][name].append(texts_per_second(forwards[name], *inputs[cell], args.seconds))
        print(f"round {r + 1}/{args.rounds} done, load {load_average()}", flush=True)

    base = names[0]
    rows = []
    print(
        f"\ntexts/s best / median of {args.rounds} rounds, ratio of bests to {base}; "
        f"then CPU ms per text (median) and its ratio to {base}'s (below 1: cheaper)"
    )
    print(f"{'cell':<16}" + "".join(f"{n:>34}" for n in names))
    for cell in cells:
        kind, size = cell
        tokens = inputs[cell][0].shape[1]
        line = f"{kind} {tokens}t x{size:<3}".ljust(16)
        row: dict[str, Any] = {"texts": kind, "tokens": tokens, "batch": size}
        base_best = max(s[0] for s in samples[cell][base])
        base_cpu = statistics.median(s[1] for s in samples[cell][base])
        for name in names:
            rates, cpus = [s[0] for s in samples[cell][name]], [s[1] for s in samples[cell][name]]
            best, median, cpu = max(rates), statistics.median(rates), statistics.median(cpus)
            line += (
                f"{best:>8.1f}/{median:>6.1f} {best / base_best:>4.2f}x {cpu:>5.2f}ms {cpu / base_cpu:>4.2f}"
            )
            row[name] = {
                "best": round(best, 2),
                "median": round(median, 2),
                "ratio_best": round(best / base_best, 3),
                "cpu_ms_per_text_median": round(cpu, 3),
                "cpu_ratio": round(cpu / base_cpu, 3),
            }
        rows.append(row)
        print(line)
    load_after = load_average()
    print(f"load average {load_before} before, {load_after} after")
    if not args.no_write:
        path = write_results(
            "encoder_forward",
            {
                "machine": machine_info(["onnxruntime", "onnx"]),
                "command": "python bench/encoder_forward.py " + " ".join(sys.argv[1:]),
                "rounds": args.rounds,
                "seconds_per_cell": args.seconds,
                "load_average": {"before": load_before, "after": load_after},
                "unit": "texts/s",
                "rows": rows,
            },
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
