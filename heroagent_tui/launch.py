"""Runs the engine and the terminal app on one event loop; the engine outlives the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.config import Config
from core.engine import Engine, EngineStartError


async def run_app(config: Config) -> int:
    """Start the engine in the background, show the app at once, stop the engine after it."""
    from heroagent_tui.app import create_app
    from heroagent_tui.logbridge import BusLogHandler

    engine = Engine(config, fail_fast=False)
    handler = BusLogHandler(engine.bus, {f"core.{name}" for name in engine.services})
    logging.getLogger("core").addHandler(handler)
    app = create_app(engine)
    # The app appears while services come up; it shows their progress from events.
    starting = asyncio.create_task(engine.start(), name="engine-start")
    try:
        await app.run_async()
    finally:
        if not starting.done():
            starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, EngineStartError):
            await starting
        await engine.stop()
        logging.getLogger("core").removeHandler(handler)
    return app.return_code or 0


def run_tui(config: Config) -> int:
    """Blocking entry point for the CLI's default command."""
    # Log records would scribble over the screen; the app shows them from the bus instead.
    logging.getLogger().handlers.clear()
    logging.getLogger().addHandler(logging.NullHandler())
    return asyncio.run(run_app(config))
