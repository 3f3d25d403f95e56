"""`inferd serve --config models.toml`: catalogue entries to add or override, and `[server]` settings.

    [server]
    max_memory = "4GB"
    preload = ["sentence-transformers/all-MiniLM-L6-v2"]   # or ["all"]: every model below and the defaults

    [models."my-org/my-classifier"]
    tasks = ["text-classification"]
    backend = "transformers"
    source = "path:./my-classifier"      # relative to this file's folder
    default_for = ["text-classification"]

An entry that already exists (a default model) keeps the fields the file does not set.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..catalogue import ModelEntry
from .engine import EngineSettings
from .middleware import check_origin
from .settings import ServerSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """The config file is wrong; the message names the file, the table and the key."""


_TUPLES = ("tasks", "default_for")
_MAPPINGS = ("options", "sha256", "approximations")
_STRINGS = ("backend", "source", "license", "name")
_COUNTS = ("max_batch_size", "max_batch_tokens")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}

# [server] keys: name -> (type, where it goes)
SERVER_KEYS: dict[str, type] = {
    "host": str,
    "port": int,
    "api_key": str,
    "max_json_bytes": int,
    "max_media_bytes": int,
    "request_timeout_s": float,
    "max_load_wait_s": float,
    "max_memory": str,
    "max_batch_size": int,
    "max_batch_tokens": int,
    "max_batch_wait_ms": float,
    "prefetch_batches": int,
    "max_queue_per_model": int,
    "max_streams": int,
    "preload": list,
    "allowed_dirs": list,
    "docs": bool,
    "playground": bool,
    "cors_origins": list,
    "gzip": bool,
    "max_client_batch_size": int,
    "max_image_pixels": int,
    "max_image_side": int,
    "max_image_aspect": float,
    "max_audio_seconds": float,
    # uvicorn's connections (cli.py reads them through connection_settings)
    "drain_timeout_s": float,
    "keep_alive_timeout_s": float,
    "max_connections": int,
}
# What `inferd serve` gives uvicorn when neither a flag nor [server] sets it.
CONNECTION_DEFAULTS: dict[str, float] = {
    "drain_timeout_s": 30.0,
    "keep_alive_timeout_s": 5.0,
    "max_connections": 1000,
}


def parse_size(value: str | int) -> int:
    """Bytes from 4GB, 512MB, 1.5GiB, 4096 (decimal units; an `i` means powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(f"'{value}' is not a size: write e.g. 4GB, 512MB or a number of bytes.")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    power = "bkmgt".index(unit[0]) if unit else 0
    return int(number * base**power)


def cors_origins(values: list[Any], where: str) -> list[str]:
    """The origins of `[server] cors_origins` or `--cors-origin`, checked; ConfigError naming `where` if not."""
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where} must be a list of origins (strings), got {values!r}.")
    try:
        return [check_origin(v) for v in values]
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _entry(model_id: str, table: Any, base: ModelEntry | None, where: str) -> ModelEntry:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of fields.")
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key in _TUPLES:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: `{key}` must be a list of strings.")
            fields[key] = tuple(value)
        elif key in _MAPPINGS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: `{key}` must be a table.")
            fields[key] = dict(value)
        elif key in _STRINGS:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: `{key}` must be a string.")
            fields[key] = value
        elif key in _COUNTS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{where}: `{key}` must be a whole number >= 0 (0: the server's setting).")
            fields[key] = value
        elif key == "trust_remote_code":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: `trust_remote_code` must be true or false.")
            fields[key] = value
        else:
            known = sorted((*_TUPLES, *_MAPPINGS, *_STRINGS, *_COUNTS, "trust_remote_code"))
            raise ConfigError(f"{where}: unknown key `{key}`; known keys: {', '.join(known)}.")
    if base is not None:
        return dataclasses.replace(base, **fields)
    missing = [k for k in ("tasks", "backend", "source") if k not in fields]
    if missing:
        raise ConfigError(f"{where}: a new model needs {', '.join(f'`{m}`' for m in missing)}.")
    return ModelEntry(model_id=model_id, **fields)


def check_not_negative(key: str, value: Any, where: str) -> None:
    """Counts, sizes and timeouts below zero mean nothing: refuse them instead of clamping them silently."""
    if SERVER_KEYS.get(key) in (int, float) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{where}: `{key}` must be >= 0, got {value!r}.")


def check_api_key(key: str, where: str) -> str:
    """An empty key would start an open server while its operator believes it closed: refuse it."""
    if not key.strip():
        raise ConfigError(
            f"{where}: the API key is empty. Give a key (clients send `Authorization: Bearer <key>`), "
            "or leave it out to serve without one."
        )
    return key


def _server(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table.")
    out: dict[str, Any] = {}
    for key, value in table.items():
        kind = SERVER_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where}: unknown key `{key}`; known keys: {', '.join(sorted(SERVER_KEYS))}.")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if key == "max_memory" and isinstance(value, int):
            value = str(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: `{key}` must be {kind.__name__}, got {value!r}.")
        check_not_negative(key, value, where)
        if key == "max_memory":
            value = parse_size(str(value))
        if key == "cors_origins":
            value = cors_origins(value, f"{where}: `cors_origins`")
        if key == "api_key":
            check_api_key(value, f"{where}: `api_key`")
        out[key] = value
    return out


@dataclasses.dataclass
class ServeConfig:
    """What a config file says: the catalogue after its additions, and the `[server]` values it set."""

    catalogue: dict[str, ModelEntry]
    server: dict[str, Any]
    folder: Path | None = None  # relative paths in the file are taken from here


def load_config(path: Path | None, base: Mapping[str, ModelEntry]) -> ServeConfig:
    catalogue = dict(base)
    if path is None:
        return ServeConfig(catalogue, {})
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(data) - {"server", "models"})
    if unknown:
        raise ConfigError(f'{path}: unknown table(s) {unknown}; expected [server] and [models."<id>"].')
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f'{path}: `models` must be tables like [models."org/name"].')
    for model_id, table in models.items():
        catalogue[model_id] = _entry(
            model_id, table, catalogue.get(model_id), f'{path} [models."{model_id}"]'
        )
    server = _server(data.get("server", {}), f"{path} [server]")
    folder = Path(path).resolve().parent
    if "allowed_dirs" in server:
        server["allowed_dirs"] = [str((folder / d).resolve()) for d in server["allowed_dirs"]]
    return ServeConfig(catalogue, server, folder)


PRELOAD_ALL = "all"


def preload_models(
    names: Sequence[str], catalogue: Mapping[str, ModelEntry], *, defaults: bool = False
) -> list[str]:
    """The model ids to load before the port opens, from `--preload` / `[server] preload` names.

    `all` stands for every model of the catalogue, and `defaults` (`--preload-defaults`) adds each task's
    default model, as TGI and vLLM load theirs before they serve. A name that is neither raises ConfigError.
    """
    unknown = [m for m in names if m not in catalogue and m != PRELOAD_ALL]
    if unknown:
        raise ConfigError(
            f"--preload names unknown models: {', '.join(unknown)}. Name models of the catalogue "
            f"(`inferd serve` lists them at GET /api/models), `{PRELOAD_ALL}`, or use --preload-defaults."
        )
    chosen = list(catalogue) if PRELOAD_ALL in names else list(names)
    if defaults:
        chosen += [m for m, e in catalogue.items() if e.default_for]
    return list(dict.fromkeys(chosen))  # each once, in order


def server_settings(values: Mapping[str, Any]) -> ServerSettings:
    names = {f.name for f in dataclasses.fields(ServerSettings)}
    kept = {k: v for k, v in values.items() if k in names}
    if "cors_origins" in kept:
        kept["cors_origins"] = tuple(kept["cors_origins"])
    return ServerSettings(**kept)


def connection_settings(values: Mapping[str, Any]) -> dict[str, float]:
    """drain_timeout_s, keep_alive_timeout_s and max_connections (0: the default) for uvicorn."""
    out = {key: values.get(key, default) for key, default in CONNECTION_DEFAULTS.items()}
    out["max_connections"] = out["max_connections"] or CONNECTION_DEFAULTS["max_connections"]
    return out


def engine_settings(values: Mapping[str, Any]) -> EngineSettings:
    """The engine's half of `inferd serve`'s values (flags over the config file; see cli.py)."""
    return EngineSettings(
        max_memory_bytes=values.get("max_memory"),
        max_batch_size=values.get("max_batch_size", EngineSettings.max_batch_size),
        max_batch_tokens=values.get("max_batch_tokens", EngineSettings.max_batch_tokens),
        max_batch_wait_s=values.get("max_batch_wait_ms", 0.0) / 1000,
        prefetch_batches=values.get("prefetch_batches", EngineSettings.prefetch_batches),
        max_queue_per_model=values.get("max_queue_per_model", EngineSettings.max_queue_per_model),
        max_streams=values.get("max_streams", EngineSettings.max_streams),
        request_timeout_s=values.get("request_timeout_s", EngineSettings.request_timeout_s),
        max_load_wait_s=values.get("max_load_wait_s", EngineSettings.max_load_wait_s),
        allowed_dirs=tuple(Path(d) for d in values.get("allowed_dirs", ())),
        preload=tuple(values.get("preload", ())),
        config_dir=values.get("config_dir"),
    )
