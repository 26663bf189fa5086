"""The Python examples of docs/client.md run as they are, against a real served engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.client.conftest import run_python
from tests.core.test_serve import Serve

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "client.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)
# What each example prints, in order, so that an example that runs but does nothing fails.
PRINTS = ["hello", "101 of 101 done", "default/email 2 20/s 0", "item 1: line 1, col 3", "['[{"]


def test_every_example_has_an_expectation() -> None:
    assert len(BLOCKS) == len(PRINTS)


@pytest.mark.parametrize(("code", "expected"), list(zip(BLOCKS, PRINTS, strict=True)))
def test_the_example_runs(served: Serve, code: str, expected: str) -> None:
    run = run_python(served, code, timeout=120)  # Client() with no arguments
    assert run.returncode == 0, run.stderr
    assert expected in run.stdout, run.stdout
