"""The CLI benchmark runs in quick form; its floor is what a real submit imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_bench_quick_has_its_lines_and_the_target() -> None:
    argv = [sys.executable, "-m", "bench.cli", "--runs", "2"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    header, bare, floor, submit, target = result.stdout.splitlines()
    assert header.split() == [
        "what",
        "p50",
        "ms",
        "best",
        "ms",
        "x",
        "bare",
        "x",
        "floor",
        "cpu",
        "p50",
        "ms",
    ]
    assert bare.startswith("python -c pass")
    # The floor names what the submit path loads: hiredis, not asyncio, redis-py or typer.
    assert floor.startswith("import hiredis, ... (")
    assert submit.startswith("heroagent submit FILE")
    # A figure, not a test threshold: met or missed, the run passes.
    assert re.fullmatch(
        r"target: heroagent submit p50 under 150 ms: (met|missed) \(\d+ ms, CPU \d+ ms\)", target
    )
