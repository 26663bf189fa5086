"""Headless runner for `heroagent --serve`: the only place that installs signal handlers."""

from __future__ import annotations

import asyncio
import logging
import sys

from core.config import Config
from core.engine import Engine, EngineStartError
from core.headless import StopSignals, configure_logging

log = logging.getLogger("core.serve")


async def serve(config: Config) -> int:
    """Run the engine until SIGINT or SIGTERM; return the process exit code.

    The first signal drains the local jobs (up to `jobs.drain_seconds`, only while some
    run), then stops the services gracefully, each under its deadline. A second signal
    ends the drain at once (the jobs go back to their queues) or, during the stop, stops
    at once (the Redis child is still stopped); either way the exit code is 1.
    """
    signals = StopSignals()
    try:
        with signals:
            async with Engine(config, fail_fast=True) as engine:
                for status in engine.statuses():
                    log.info(
                        "%-7s %-8s %s", status.name, status.state, status.address or status.detail
                    )
                log.info("ready; stop with Ctrl-C or SIGTERM")
                await signals.requested.wait()
                log.info("stopping; a second Ctrl-C or SIGTERM stops at once")
                await signals.drain(engine.drain())
    except EngineStartError as exc:
        # One line where errors go, for whoever started us (a shell, systemd, a script).
        print(f"heroagent: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    except asyncio.CancelledError:
        if not signals.absorb():
            raise
        log.error("stopped at once; services may not have finished their work")
        return 1
    log.info("stopped")
    return 1 if signals.cuts else 0


def run(config: Config) -> int:
    """Blocking entry point for the CLI."""
    configure_logging(config.log_level)
    return asyncio.run(serve(config))
