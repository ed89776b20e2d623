"""Benchmarks that print figures, run on demand from the repository root: `python -m benchmarks.bench_app --help`."""
