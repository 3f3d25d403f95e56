"""Where a model's files are: resolve a catalogue source to a folder, check the files' sha256, and find
hub models in the local Hugging Face cache.

Everything here is sync (it touches the disk) and runs on a model's worker thread. A model folder can never
escape its root: ids are validated before any filesystem access, `..` and absolute paths are refused, and
symlinks are followed to check where they really point.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..catalogue import ModelEntry, file_sha256, model_home

log = logging.getLogger(__name__)

# A model id: one or two segments ("gpt2", "org/name"), optionally more for local catalogues; no "..".
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._+@:=-]*"
_MODEL_ID = re.compile(rf"{_SEGMENT}(/{_SEGMENT})*")
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


class SourceError(Exception):
    """The model's files cannot be found or used (missing, outside the allowed folders, wrong digest)."""


class IntegrityError(SourceError):
    """A file's sha256 differs from the catalogue's."""


def valid_model_id(model_id: str) -> bool:
    return (
        0 < len(model_id) <= 256
        and _MODEL_ID.fullmatch(model_id) is not None
        and ".." not in model_id
        and "//" not in model_id
    )


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _check_tree(folder: Path, roots: Sequence[Path], what: str) -> None:
    """Refuse a folder holding symlinks that lead outside `roots` (a model file must not read /etc/passwd)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in (*dirnames, *filenames):
            p = Path(dirpath, name)
            if p.is_symlink():
                target = p.resolve()
                if not any(_inside(target, r) for r in roots):
                    raise SourceError(f"{what}: {p} is a symlink to {target}, outside the model's folder.")


def _relative(text: str, what: str) -> Path:
    rel = Path(text)
    if not text or rel.is_absolute() or ".." in rel.parts:
        raise SourceError(f"{what}: '{text}' must be a relative path without '..'.")
    return rel


def resolve_source(
    entry: ModelEntry,
    *,
    allowed_dirs: Sequence[Path] = (),
    config_dir: Path | None = None,
    allow_download: bool = True,
) -> Path:
    """The folder holding `entry`'s files. Raises SourceError with a message an operator can act on."""
    kind, _, rest = entry.source.partition(":")
    what = f"Model {entry.model_id} (source {entry.source!r})"
    if kind == "path":
        roots = [Path(d).resolve() for d in allowed_dirs]
        if config_dir is not None:
            roots.append(Path(config_dir).resolve())
        if not roots:
            roots.append(Path.cwd().resolve())
        raw = Path(rest).expanduser()
        if not raw.is_absolute():
            if ".." in raw.parts:
                raise SourceError(f"{what}: a relative model path may not contain '..'.")
            raw = (Path(config_dir) if config_dir is not None else roots[0]) / raw
        folder = raw.resolve()  # follows symlinks: a link pointing out is judged by its target
        if not any(_inside(folder, r) for r in roots):
            allowed = ", ".join(str(r) for r in roots)
            raise SourceError(
                f"{what}: {folder} is outside the allowed folders ({allowed}); add its parent folder to the "
                "server's allowed dirs (EngineSettings.allowed_dirs / `inferd serve --allow-dir`)."
            )
        return _existing(folder, roots, what)
    if kind == "package":
        module, _, sub = rest.partition("/")
        spec = (
            importlib.util.find_spec(module) if module else None
        )  # finds without importing (no side effects)
        if spec is None or not spec.submodule_search_locations:
            raise SourceError(f"{what}: Python package '{module}' is not installed (pip install it).")
        root = Path(next(iter(spec.submodule_search_locations))).resolve()
        folder = (root / _relative(sub, what)).resolve() if sub else root
        if not _inside(folder, root):
            raise SourceError(f"{what}: '{sub}' leads outside package {module}.")
        return _existing(folder, [root], what)
    if kind == "home":
        root = model_home().resolve()
        folder = (root / _relative(rest, what)).resolve()
        if not _inside(folder, root):
            raise SourceError(f"{what}: '{rest}' leads outside the model home {root}.")
        if not folder.is_dir():
            raise SourceError(f"{what}: {folder} does not exist; run the model install step (`make run`).")
        return _existing(folder, [root], what)
    if kind == "hub":
        return _hub_folder(rest, what, allow_download)
    raise SourceError(f"{what}: unknown source kind '{kind}' (expected path:, package:, hub: or home:).")


def _existing(folder: Path, roots: Sequence[Path], what: str) -> Path:
    if not folder.exists():
        raise SourceError(f"{what}: {folder} does not exist.")
    if folder.is_dir():
        _check_tree(folder, roots, what)
    return folder


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_folder(repo_id: str, what: str, allow_download: bool) -> Path:
    revision = None
    if "@" in repo_id:
        repo_id, _, revision = repo_id.partition("@")
    if not _HUB_ID.fullmatch(repo_id) or ".." in repo_id:
        raise SourceError(f"{what}: '{repo_id}' is not a valid Hugging Face repo id.")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise SourceError(f"{what}: needs huggingface_hub (pip install 'inferd[server]').") from exc
    # The local cache first: it never touches the network, so a machine without hub access serves what it has.
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception as exc:
        if hub_offline() or not allow_download:
            raise SourceError(
                f"{what}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set."
            ) from exc
        try:
            # Runs on the model's thread: a slow or absent network delays this model only, the server keeps
            # answering 503 model_loading meanwhile; huggingface_hub's own timeouts bound the attempt.
            folder = Path(snapshot_download(repo_id, revision=revision))
        except Exception as exc2:
            raise SourceError(f"{what}: not in the local cache and the download failed: {exc2}") from exc2
    repo_root = folder.resolve().parent.parent  # models--org--name: snapshots link into its blobs/
    return _existing(folder, [repo_root], what)


# ---- sha256 ---------------------------------------------------------------------------------------------------


class DigestCache:
    """Digests already verified, keyed by (path, size, mtime_ns), so a restart does not re-hash big files."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._data: dict[str, list] = {}
        if file is not None and file.is_file():
            try:
                self._data = json.loads(file.read_text())
            except (OSError, ValueError):
                log.warning("Ignoring unreadable digest cache %s", file)

    def digest(self, path: Path) -> str:
        st = path.stat()
        key = str(path)
        with self._lock:
            hit = self._data.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return str(hit[2])
        digest = file_sha256(path)
        with self._lock:
            self._data[key] = [st.st_size, st.st_mtime_ns, digest]
            self._save()
        return digest

    def _save(self) -> None:
        if self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._data))
            os.replace(tmp, self.file)  # atomic: a crash never leaves half a cache
        except OSError as exc:
            log.warning("Cannot write digest cache %s: %s", self.file, exc)


def verify_sha256(entry: ModelEntry, folder: Path, cache: DigestCache) -> None:
    """Raise IntegrityError naming the file and both digests when a file differs from the catalogue."""
    root = folder.resolve()
    for rel_text, expected in entry.sha256.items():
        what = f"Model {entry.model_id}"
        rel = _relative(rel_text, what)
        path = root / rel if root.is_dir() else root
        if not path.is_file():
            raise IntegrityError(f"{what}: file {rel_text} listed in its sha256 is missing from {root}.")
        actual = cache.digest(path.resolve())
        if actual.lower() != expected.strip().lower():
            raise IntegrityError(
                f"{what}: sha256 mismatch for {rel_text}: expected {expected}, found {actual}. "
                "The file is corrupt or was replaced; refusing to load it (reinstall the model)."
            )


def folder_bytes(folder: Path) -> int:
    if folder.is_file():
        return folder.stat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                total += Path(dirpath, name).stat().st_size  # follows HF cache links to the blobs
            except OSError:
                pass
    return total


# ---- models found in the local Hugging Face cache ------------------------------------------------------------

# The last word of a transformers architecture name -> the pipeline it serves.
_ARCH_TASKS: Mapping[str, str] = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForMaskedLM": "fill-mask",
    "ForCausalLM": "text-generation",
    "LMHeadModel": "text-generation",
    "ForImageClassification": "image-classification",
    "ForObjectDetection": "object-detection",
    "ForSpeechSeq2Seq": "automatic-speech-recognition",
    "ForCTC": "automatic-speech-recognition",
    "ForAudioClassification": "audio-classification",
}


# What a diffusers pipeline (model_index.json) serves: the image-to-image pipeline is made from the same weights.
_DIFFUSION_TASKS = ("text-to-image", "image-to-image")


def hub_cached_entry(model_id: str) -> ModelEntry | None:
    """A transformers (or, for a pipeline with model_index.json, diffusers) entry for a repo already in the
    local HF cache (no network), or None."""
    if not _HUB_ID.fullmatch(model_id) or ".." in model_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        if isinstance(try_to_load_from_cache(model_id, "model_index.json"), str):
            return ModelEntry(
                model_id=model_id, tasks=_DIFFUSION_TASKS, backend="diffusers", source=f"hub:{model_id}"
            )
        config = try_to_load_from_cache(model_id, "config.json")
    except ValueError:  # huggingface_hub's HFValidationError: an id no Hub repo can have ("y.", "a--b")
        return None
    if not isinstance(config, str):
        return None
    task = None
    readme = try_to_load_from_cache(model_id, "README.md")
    if isinstance(readme, str):
        match = re.search(r"^pipeline_tag:\s*([\w-]+)", Path(readme).read_text(errors="replace"), re.M)
        task = match.group(1) if match else None
    if task is None:
        try:
            archs = json.loads(Path(config).read_text()).get("architectures") or []
        except (OSError, ValueError):
            archs = []
        for arch in archs:
            task = next((t for suffix, t in _ARCH_TASKS.items() if str(arch).endswith(suffix)), None)
            if task:
                break
    if task is None:
        return None
    return ModelEntry(model_id=model_id, tasks=(task,), backend="transformers", source=f"hub:{model_id}")
