"""text-to-speech with CMU Flite, the Debian `flite` program (BSD-style licence): the fallback voice.

Robotic but intelligible, 28 MB installed, no Python dependency: `apt-get install -y flite`. The default
voice is `slt` (US English, female, 16 kHz); the `speaker` parameter picks another built-in voice.
Text never goes through a shell: it is written to a file in a private temporary folder and passed with `-f`
(no argument-length limit, and a text starting with "-" cannot be read as an option).

Entry options: `voice` ("slt"), `binary` (found on PATH as "flite").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tasks import Audio
from .base import Backend, InputError, Model

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "text-to-speech"
VOICES = ("slt", "kal", "kal16", "awb", "rms")  # Debian flite 2.2's built-in general voices
MAX_CHARS = 5_000
MISSING = (
    "The flite program is not installed (or not on PATH). On Debian/Ubuntu: "
    "`apt-get update && apt-get install -y flite`; or install the piper voice: pip install 'inferd[tts-piper]'."
)


def find_flite(binary: str = "flite") -> str | None:
    return shutil.which(binary)


class FliteModel(Model):
    tasks = (TASK,)

    def __init__(self, binary: str, voice: str) -> None:
        self._binary = binary
        self._voice = voice

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        voice = parameters.get("speaker") or self._voice
        if voice not in VOICES:
            raise InputError(f"Unknown speaker {voice!r}; flite voices: {', '.join(VOICES)}.")
        return [self._one(text, str(voice)) for text in inputs]

    def _one(self, text: Any, voice: str) -> Audio:
        import soundfile

        if not isinstance(text, str) or not text.strip():
            raise InputError("Text to speak must be a non-empty string.")
        if len(text) > MAX_CHARS:
            raise InputError(f"Text is {len(text)} characters long; at most {MAX_CHARS} per input.")
        with tempfile.TemporaryDirectory(prefix="inferd-flite-") as tmp:
            source, out = Path(tmp, "in.txt"), Path(tmp, "out.wav")
            source.write_text(text, encoding="utf-8")
            try:
                done = subprocess.run(
                    [self._binary, "-voice", voice, "-f", str(source), "-o", str(out)],
                    capture_output=True,
                    timeout=60 + len(text) / 10,
                    check=False,
                )
            except FileNotFoundError:
                raise RuntimeError(MISSING) from None
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"flite took longer than {60 + len(text) / 10:.0f} s.") from None
            if done.returncode != 0 or not out.is_file():
                why = done.stderr.decode(errors="replace").strip()[-500:]
                raise RuntimeError(f"flite failed (exit {done.returncode}): {why}")
            samples, rate = soundfile.read(str(out), dtype="float32", always_2d=False)
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
        if samples.size == 0:
            raise InputError("The text has nothing to pronounce.")
        return Audio(array=np.ascontiguousarray(samples, dtype=np.float32), sampling_rate=int(rate))


class FliteBackend(Backend):
    name = "flite"

    def load(self, entry: ModelEntry, path: str) -> Model:
        binary = find_flite(str(entry.options.get("binary", "flite")))
        if binary is None:
            raise RuntimeError(MISSING)
        voice = str(entry.options.get("voice", "slt"))
        if voice not in VOICES:
            raise RuntimeError(
                f"Unknown flite voice {voice!r} in the catalogue; voices: {', '.join(VOICES)}."
            )
        return FliteModel(binary, voice)
