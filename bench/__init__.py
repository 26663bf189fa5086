"""Benchmarks against the peers, one command per area, ratios printed."""
