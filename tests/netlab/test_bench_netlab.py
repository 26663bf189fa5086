"""The lab bench runs in small form and prints a 2-host/1-host ratio for each workload."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Slow: three engine and worker starts on two shared cores; the default lab tests
# already run the same hosts.
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the network lab needs root")
def test_netlab_bench_quick() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.netlab", "--jobs", "150"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("sleep", "noop"):
        row = next(line for line in lines if line.startswith(name))
        assert row.rstrip().endswith("x"), row
        assert float(row.split()[-1].rstrip("x")) > 0
