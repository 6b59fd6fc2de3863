"""Benchmarks: `python -m bench` (table, JSON, chart) and `pytest bench/` (pytest-benchmark)."""
