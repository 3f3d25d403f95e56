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


_TALLY: Counter[str] = Counter()
_SERVER_ERRORS: list[dict[str, Any]] = []
_LOCK = threading.Lock()


def _error(response: Any) -> tuple[str | None, str]:
    """(error_type, message) of an error answer, in inferd's envelope or OpenAI's."""
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return body.get("error_type"), str(message or "")


def model_refusal(response: Any) -> bool:
    """A schema-valid request the model itself cannot take, which no schema of the route can state: a
    generation parameter its runtime lacks (TGI's `model_kwargs` 400, which clients retry without), a task no
    served model has (400 `not_supported`), or a 422
    from the model (inputs past its context, a table without its columns, `dimensions` past its vectors).
    TGI's own checks of the parameters ("Input validation error: ...") are the schema's, so not these."""
    error_type, message = _error(response)
    if response.status_code == 400:
        # A route whose task no served model has lists no model ids, and the run pins them to served ones.
        return error_type == "not_supported" or "`model_kwargs` are not used by the model" in message
    return (
        response.status_code == 422
        and error_type == "validation"
        and not message.startswith("Input validation")
    )


_NOT_MEDIA = (
    "is not valid base64",
    "is not an image this server can read",
    "is not audio this server can read",
)


def fake_media(case: Any, response: Any) -> bool:
    """The coverage phase fills `base64-image` fields with "0" and the like: it knows JSON Schema's formats,
    not ours (the fuzzing phase draws real files, above). The server refusing those is right."""
    meta = getattr(case, "meta", None)
    coverage = meta is not None and str(meta.phase.name) == "coverage"
    return coverage and response.status_code == 400 and any(m in _error(response)[1] for m in _NOT_MEDIA)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Drops two kinds of failures, counted in the tally instead:
    - a schema-valid request refused by the model (`model_refusal`);
    - a request whose media the generator could not make (`fake_media`)."""
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    kind = (
        "refused by the model"
        if model_refusal(response)
        else "fake media"
        if fake_media(case, response)
        else ""
    )
    if kind:
        with _LOCK:
            _TALLY[f"schema-valid, {kind}"] += 1
    return not kind


@schemathesis.check
def tally(ctx: Any, response: Any, case: Any) -> bool | None:
    """Counts answers by status (never fails): cases, 4xx, 5xx, and the first few 5xx for the report."""
    status = response.status_code
    kind = f"{status} {_error(response)[0]}" if status >= 500 else f"{status // 100}xx"
    with _LOCK:
        _TALLY["cases"] += 1
        _TALLY[kind] += 1
        if status >= 500 and len(_SERVER_ERRORS) < 20:
            _SERVER_ERRORS.append(
                {
                    "status": status,
                    "operation": case.operation.label,
                    "body": response.content[:300].decode("utf-8", "replace"),
                }
            )
    return None


def _write_tally() -> None:
    path = os.environ.get("INFERD_FUZZ_TALLY")
    if path:
        with open(path, "w") as f:
            json.dump({"tally": dict(_TALLY), "server_errors": _SERVER_ERRORS}, f, indent=1)


atexit.register(_write_tally)
