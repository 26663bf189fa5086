"""The WebDAV benchmark runs end to end in its quick form (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_webdav_bench_quick_runs(tmp_path: Path) -> None:
    out = tmp_path / "webdav.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.webdav", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio GET big, webdav/static" in result.stdout
    summary = json.loads(out.read_text())
    assert set(summary["ratios"]) == {"GET small, webdav/static", "GET big, webdav/static"}
    assert all(len(m["runs"]) == 1 for m in summary["results"].values())
