"""Benchmarks against the peers; `python -m bench` runs them all and prints ratios."""
