"""`python -m bench.tui --quick` runs end to end: first screen, key latency, clean quit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_tui_quick() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tui", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first screen" in done.stdout
    assert "key-to-frame" in done.stdout
    assert "children left: none" in done.stdout
