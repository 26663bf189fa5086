"""The Rhai benchmark runs in quick form and prints a ratio for every workload."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_rhai_bench_quick() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.rhai", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("fib(18) recursive", "additions", "string building", "array sort"):
        row = next(line for line in lines if name in line)
        assert row.rstrip().endswith("x"), row
    assert lines[-1].startswith("target: within 30x of CPython")
