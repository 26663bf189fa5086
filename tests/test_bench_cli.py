"""The CLI benchmark runs in quick form; its floor is what a real submit imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_bench_quick_has_its_three_lines() -> None:
    argv = [sys.executable, "-m", "bench.cli", "--runs", "2"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    header, bare, floor, submit = result.stdout.splitlines()
    assert header.split() == ["what", "p50", "ms", "best", "ms", "x", "bare", "x", "floor"]
    assert bare.startswith("python -c pass")
    # The floor names what the submit path loads: asyncio and hiredis, not redis-py or typer.
    assert floor.startswith("import asyncio, hiredis, ... (")
    assert submit.startswith("heroagent submit FILE")
