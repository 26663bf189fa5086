"""The console script answers --version."""

import subprocess
import sys

from core import __version__


def test_version_flag_prints_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "heroagent_tui", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"heroagent {__version__}"
