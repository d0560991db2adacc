"""Runnable benchmarks: ``python -m benchmarks.bench_<topic>``; results in RESULTS.md."""
