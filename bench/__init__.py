"""Benchmarks of HeroAgent against its peers; one module per subject."""
