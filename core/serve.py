"""Headless runner for `heroagent --serve`: the only place that installs signal handlers."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable

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


class StopSignals:
    """SIGINT and SIGTERM for a headless run, handled while the `with` block runs.

    The first signal sets `requested`. Each later one cuts short what the run is doing
    then, the drain and after it the stop, by cancelling the task that entered the block.
    """

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.cuts = 0
        self._loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None
        self._main = main

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.requested.is_set():
            self.requested.set()
            return
        self.cuts += 1
        log.warning("%s %s: stopping at once", "second" if self.cuts == 1 else "another", sig.name)
        self._main.cancel()

    async def drain(self, draining: Awaitable[int]) -> None:
        """Await a drain that the next signal ends early, so the stop after it still runs."""
        cuts = self.cuts
        try:
            await draining
        except asyncio.CancelledError:
            if self.cuts == cuts:
                raise  # not ours: whoever cancelled wants the whole run to end
            self._main.uncancel()
            log.warning("stopping without waiting for the running jobs")

    def absorb(self) -> bool:
        """After a CancelledError: True, with the cancel undone, when a signal caused it."""
        if not self.cuts:
            return False
        self._main.uncancel()
        return True


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
