"""Headless runner for `heroagent --serve`: the only place that installs signal handlers."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from core.config import Config
from core.engine import Engine, EngineStartError

log = logging.getLogger("core.serve")


def configure_logging(level: str) -> None:
    """Rich output on a terminal, plain timestamped lines otherwise (for journald, CI, files)."""
    root = logging.getLogger()
    root.handlers.clear()
    handler: logging.Handler
    if sys.stdout.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
            )
        )
    root.addHandler(handler)
    root.setLevel(level.upper())


async def serve(config: Config) -> int:
    """Run the engine until SIGINT or SIGTERM; return the process exit code.

    The first signal stops the services gracefully, each under its deadline; a second
    one stops at once (the Redis child is still stopped) and the exit code is 1.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()
    assert main is not None
    escalated = False

    def on_signal(sig: signal.Signals) -> None:
        nonlocal escalated
        if not stop.is_set():
            stop.set()
        elif not escalated:
            escalated = True
            log.warning("second %s: stopping at once", sig.name)
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with Engine(config, fail_fast=True) as engine:
            for status in engine.statuses():
                log.info("%-7s %-8s %s", status.name, status.state, status.address or status.detail)
            log.info("ready; stop with Ctrl-C or SIGTERM")
            await stop.wait()
            log.info("stopping; a second Ctrl-C or SIGTERM stops at once")
    except EngineStartError as exc:
        # One line where errors go, for whoever started us (a shell, systemd, a script).
        print(f"heroagent: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    except asyncio.CancelledError:
        if not escalated:
            raise
        main.uncancel()
        log.error("stopped at once; services may not have finished their work")
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0


def run(config: Config) -> int:
    """Blocking entry point for the CLI."""
    configure_logging(config.log_level)
    return asyncio.run(serve(config))
