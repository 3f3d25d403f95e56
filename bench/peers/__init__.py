"""Peer servers the benchmarks compare inferd with (started as subprocesses by bench/_harness.py)."""
