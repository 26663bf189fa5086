"""`heroagent rhai check` and `heroagent rhai run`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import check_fails_then_passes, run_heroagent

REPO = Path(__file__).resolve().parents[3]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(REPO / ".no-home")}
    return run_heroagent(*args, cwd=REPO, env=env)


def test_check_reports_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rhai"
    good = (tmp_path / "good.rhai", "let x = 1;\nx + 1\n")
    out = check_fails_then_passes(_cli, "rhai", (bad, "let x = 1;\nlet y = (x + ;\n"), good)
    assert f"{bad}:2:14: MissingToken:" in out
    assert "             ^" in out


def test_run_prints_the_value_and_the_log(tmp_path: Path) -> None:
    script = tmp_path / "s.rhai"
    script.write_text('print("hello");\nlet r = fake::return_success(#{message: "m"});\n[r, 42]\n')
    out = _cli("rhai", "run", str(script))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["m", 42]
    assert "  | hello" in out.stderr


def test_run_error_exits_1_with_kind(tmp_path: Path) -> None:
    script = tmp_path / "loop.rhai"
    script.write_text("let n = 0;\nloop { n += 1; }\n")
    out = _cli("rhai", "run", "--max-operations", "500", str(script))
    assert out.returncode == 1
    assert f"{script}:2:1: ErrorTooManyOperations:" in out.stderr
    assert "max_operations" in out.stderr
