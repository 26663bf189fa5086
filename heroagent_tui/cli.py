"""The `heroagent` command: a plain `submit` on its fast path, the rest through typer.

`heroagent submit` is what scripts run in loops, so it starts without typer (which
builds a pydantic validator for each option; see docs/client.md for the figures):
heroagent_tui/fast.py parses its command line, and hands anything it does not take
for certain (help, an error, another command) to the typer app, `app` here.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heroagent_tui.cli_app import app

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    # `from heroagent_tui.cli import app` loads the typer app only when asked for.
    if name == "app":
        from heroagent_tui.cli_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    from heroagent_tui.fast import parse_worker, run_submit

    if run_submit(sys.argv[1:]):
        return
    worker = parse_worker(sys.argv[1:])
    if worker is not None:
        # Here, not in heroagent_tui.fast: a submit must not even see redis-py's import.
        from core.worker import run

        raise SystemExit(run(worker.load().config))
    from heroagent_tui.cli_app import app

    app()
