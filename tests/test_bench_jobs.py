"""The job benchmark runs its HeroAgent part end to end in quick form (offline, no peers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_jobs_bench_quick_heroagent_only(tmp_path: Path) -> None:
    out = tmp_path / "jobs.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.jobs", "--quick", "--only", "heroagent", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("system"))
    assert "jobs/s median [min-max]" in header
    assert "p99 ms" in header
    for label in ("1 worker process", "2 worker processes", "in-process watchdog"):
        assert any(line.startswith(f"HeroAgent, {label}") for line in lines), label
    assert "engine RSS with 10,000 jobs in history" in result.stdout
    summary = json.loads(out.read_text())
    assert [len(s["runs"]) for s in summary["systems"]] == [1, 1, 1]
    assert len(summary["systems"][0]["latency_s"]) == 20
    assert summary["rss"]["rss_mb"] > 0
