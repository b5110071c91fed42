"""Benchmarks of openclaw-nb: each ``bench_*.py`` module has ``run(quick: bool) -> dict`` of figures."""
