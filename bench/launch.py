"""The command line that starts `heroagent` from this checkout, for benchmarks and tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def heroagent_argv(data: Path, *args: str) -> list[str]:
    """`heroagent` from this checkout, with no user config and its own data dir."""
    return [
        *(sys.executable, "-m", "heroagent_tui", "--config", os.devnull),
        *("--data-dir", str(data), *args),
    ]
