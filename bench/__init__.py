"""Benchmarks of the stepfunction plugin: ``python bench/run.py`` (see run.py)."""
