"""Runs the terminal app, and the engine on a thread and loop of its own that outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from core.config import Config
from core.engine import Engine, EngineStartError
from core.engine_thread import EngineThread


async def run_app(config: Config) -> int:
    """Start the engine in the background, show the app at once, stop the engine after it."""
    from heroagent_tui.app import create_app
    from heroagent_tui.memory import freeze_startup

    host = EngineThread()
    try:
        # The job slots run in a child process (jobs.worker_process), and the engine on
        # its own loop (EngineThread): this loop stays the app's.
        engine, api = await host.build(lambda: Engine(config, fail_fast=False, child_slots=True))
        app = create_app(engine, api=api, log_level=config.log_level)
        # The app appears while services come up; it shows their progress from events.
        starting = asyncio.ensure_future(host.call(engine.start()))
        starting.add_done_callback(lambda _: freeze_startup())
        try:
            await app.run_async()
        finally:
            _tell("stopping the engine…")
            if not starting.done():
                starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, EngineStartError):
                await starting
            try:
                # The terminal is back to normal here: Ctrl-C cancels this task, which
                # ends the drain, and the stop below still hands the jobs back.
                await host.call(engine.drain(hint="Ctrl-C to stop now", say=_tell))
            finally:
                await host.call(engine.stop())
    finally:
        await host.close()
    return app.return_code or 0


def _tell(line: str) -> None:
    print(f"heroagent: {line}", file=sys.stderr, flush=True)


def run_tui(config: Config) -> int:
    """Blocking entry point for the CLI's default command."""
    # Log records would scribble over the screen; the app shows them from the bus instead.
    logging.getLogger().handlers.clear()
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        return asyncio.run(run_app(config))
    except KeyboardInterrupt:
        # Ctrl-C after the app closed: the drain or the stop was cut short, not a crash.
        _tell("stopped at once")
        return 130
