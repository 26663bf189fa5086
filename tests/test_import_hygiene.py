"""The engine and the command line load without Textual; only the TUI branch imports it."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    ["core", "core.engine", "core.serve", "core.config", "heroagent_tui.cli"],
)
def test_import_leaves_textual_out(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_the_app_module_does_import_textual() -> None:
    # The check above would pass vacuously if nothing ever imported Textual.
    code = "import sys, heroagent_tui.app; print('textual' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "True"
