"""Reproducible benchmarks; `python -m benchmarks.run` runs them and prints a table."""
