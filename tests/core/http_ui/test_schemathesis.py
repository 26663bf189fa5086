"""Schemathesis over /openapi.json against the real server, with every check."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from core.engine import Engine
from tests.core.http_ui.conftest import ui_url

CONFIG = Path(__file__).with_name("schemathesis.toml")


# A few hundred requests; on a loaded two-core machine this can pass the suite's 120 s.
@pytest.mark.timeout(300)
async def test_schemathesis_all_checks_pass(ui_engine: Engine, tmp_path: Path) -> None:
    base = ui_url(ui_engine)
    # The CLI runs in its own process; the server keeps running in this test's loop.
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "schemathesis.cli", "--no-color"),
        *("--config-file", str(CONFIG), "run"),
        f"{base}/openapi.json",
        *("--checks", "all", "--max-examples", "30", "--seed", "1", "--workers", "1"),
        *("--request-timeout", "10"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 240)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
