"""The HTTP UI benchmark runs end to end in its quick form (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_http_bench_quick_runs(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.http", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "GET /api/jobs?limit=50" in result.stdout
    assert "target: list under 50 ms" in result.stdout
    summary = json.loads(out.read_text())
    assert set(summary["ratios"]) == {"list", "submit"}
    assert summary["results"]["list"]["http"]["per_second"] > 0
