"""What the headless processes (`heroagent --serve`, `heroagent worker`) share: logs, signals.

Apart from core.serve so a worker starts without importing the engine (the HTTP and
WebDAV stacks): its start-up is part of every drain it joins.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable

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
