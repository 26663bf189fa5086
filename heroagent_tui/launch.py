"""Runs the engine and the terminal app on one event loop; the engine outlives the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from core.config import Config
from core.engine import Engine, EngineStartError


async def run_app(config: Config) -> int:
    """Start the engine in the background, show the app at once, stop the engine after it."""
    from heroagent_tui.app import create_app

    engine = Engine(config, fail_fast=False)
    app = create_app(engine, log_level=config.log_level)
    # The app appears while services come up; it shows their progress from events.
    starting = asyncio.create_task(engine.start(), name="engine-start")
    try:
        await app.run_async()
    finally:
        print("heroagent: stopping the engine…", file=sys.stderr, flush=True)
        if not starting.done():
            starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, EngineStartError):
            await starting
        await engine.stop()
    return app.return_code or 0


def run_tui(config: Config) -> int:
    """Blocking entry point for the CLI's default command."""
    # Log records would scribble over the screen; the app shows them from the bus instead.
    logging.getLogger().handlers.clear()
    logging.getLogger().addHandler(logging.NullHandler())
    return asyncio.run(run_app(config))
