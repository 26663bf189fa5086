"""Benchmarks against the peers; `python -m bench` runs them all and prints ratios."""

from __future__ import annotations

import argparse


def script_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, whose help is the module's docstring as written."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
