"""Schemathesis hooks for inferd's schema: real media for the media formats, and a tally of every answer.

Loaded by `st run` through SCHEMATHESIS_HOOKS=fuzz_hooks (scripts/ on PYTHONPATH), by scripts/fuzz.py and by
tests/server/test_schema_fuzz.py. The schema says *what* a media field holds (`format: base64-image`,
`image/png` bodies); only a real file fits it, so these strategies draw small real PNG/JPEG images and
WAV/FLAC clips instead of random bytes.

With INFERD_FUZZ_TALLY=<file>, every response's status is counted and written to that JSON file at exit,
with the first answers of each 5xx kind: the figures scripts/fuzz.py prints.
"""

from __future__ import annotations

import atexit
import base64
import io
import json
import os
import threading
from collections import Counter
from typing import Any

import numpy as np
import schemathesis
import soundfile
from hypothesis import strategies as st
from PIL import Image


def _image(width: int, height: int, colour: tuple[int, int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format=fmt)
    return out.getvalue()


def _audio(samples: int, rate: int, seed: int, fmt: str) -> bytes:
    wave = np.random.default_rng(seed).uniform(-0.5, 0.5, samples).astype(np.float32)
    out = io.BytesIO()
    soundfile.write(out, wave, rate, format=fmt, subtype="PCM_16")
    return out.getvalue()


_COLOUR = st.tuples(*(st.integers(0, 255),) * 3)


def images(fmt: str) -> st.SearchStrategy[bytes]:
    return st.builds(_image, st.integers(8, 64), st.integers(8, 64), _COLOUR, st.just(fmt))


def clips(fmt: str) -> st.SearchStrategy[bytes]:
    rates = st.sampled_from((8000, 16000, 22050))
    return st.builds(_audio, st.integers(800, 8000), rates, st.integers(0, 1000), st.just(fmt))


def _b64(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    return data.map(lambda b: base64.b64encode(b).decode("ascii"))


schemathesis.openapi.format("base64-image", _b64(st.one_of(images("PNG"), images("JPEG"))))
schemathesis.openapi.format("base64-audio", _b64(st.one_of(clips("WAV"), clips("FLAC"))))
schemathesis.openapi.media_type("image/png", images("PNG"))
schemathesis.openapi.media_type("image/jpeg", images("JPEG"))
schemathesis.openapi.media_type("audio/wav", clips("WAV"))
schemathesis.openapi.media_type("audio/flac", clips("FLAC"))


def _equal_columns(table: Any) -> None:
    """A table's columns cut to the shortest: the schema says they are equal, JSON Schema cannot."""
    if isinstance(table, dict) and table and all(isinstance(c, list) for c in table.values()):
        shortest = min(len(c) for c in table.values())
        for column in table.values():
            del column[shortest:]


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = getattr(case, "meta", None)
    positive = meta is None or meta.generation.mode.is_positive
    body = case.body
    if positive and isinstance(body, dict):
        for holder in (body, body.get("inputs")):
            if isinstance(holder, dict):
                _equal_columns(holder.get("table"))
                _equal_columns(holder.get("data"))
    return case


def _error_type(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return None
    return body.get("error_type") if isinstance(body, dict) else None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Until task-not-served answers 400 (issue 9, item 2, on another branch), its 501 is not a failure here:
    it is counted in the tally as `501 not_supported` instead."""
    return not (response.status_code == 501 and _error_type(response) == "not_supported")


_TALLY: Counter[str] = Counter()
_SERVER_ERRORS: list[dict[str, Any]] = []
_LOCK = threading.Lock()


@schemathesis.check
def tally(ctx: Any, response: Any, case: Any) -> bool | None:
    """Counts answers by status (never fails): cases, 4xx, 5xx, and the first few 5xx for the report."""
    status = response.status_code
    kind = f"{status} {_error_type(response)}" if status >= 500 else f"{status // 100}xx"
    with _LOCK:
        _TALLY["cases"] += 1
        _TALLY[kind] += 1
        if status >= 500 and len(_SERVER_ERRORS) < 20:
            _SERVER_ERRORS.append(
                {"status": status, "operation": case.operation.label, "body": response.content[:300].decode("utf-8", "replace")}
            )
    return None


def _write_tally() -> None:
    path = os.environ.get("INFERD_FUZZ_TALLY")
    if path:
        with open(path, "w") as f:
            json.dump({"tally": dict(_TALLY), "server_errors": _SERVER_ERRORS}, f, indent=1)


atexit.register(_write_tally)
