"""The Python examples of docs/client.md run as they are, against a real served engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import env_of
from tests.core.test_serve import Serve

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "client.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)
# What each example prints, in order, so that an example that runs but does nothing fails.
PRINTS = ["hello", "101 of 101 done", "duplicate: True True", "item 1: line 1, col 3", "['[{"]


def test_every_example_has_an_expectation() -> None:
    assert len(BLOCKS) == len(PRINTS)


@pytest.mark.parametrize(("code", "expected"), list(zip(BLOCKS, PRINTS, strict=True)))
def test_the_example_runs(served: Serve, code: str, expected: str) -> None:
    # Client() with no arguments finds the engine the way the docs say: HEROAGENT_* vars.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEROAGENT_")}
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**env, **env_of(served)},
    )
    assert run.returncode == 0, run.stderr
    assert expected in run.stdout, run.stdout
