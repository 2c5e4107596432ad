"""Benchmarks of the hall, run as modules: `python -m bench.spine` (see docs/performance.md)."""
