"""A screen that is handed the app context and receives the engine's event batches."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.screen import Screen
from textual.timer import Timer

from heroagent_tui.bridge import EngineBatch
from heroagent_tui.context import AppContext


class EngineScreen(Screen[None]):
    """Subscribes to event batches on mount; subclasses load a snapshot, then apply batches."""

    def __init__(self, ctx: AppContext, **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self._last_run: dict[str, float] = {}
        self._pending: set[str] = set()
        self._debounce: dict[str, Timer] = {}

    def on_mount(self) -> None:
        # Textual calls this after a subclass's own on_mount (handlers run along the MRO).
        self.ctx.events.subscribe(self, self.on_engine_batch)
        self.load_snapshot()

    def load_snapshot(self) -> None:
        """Start loading what the screen shows (a worker; never blocks)."""

    def on_engine_batch(self, batch: EngineBatch) -> None:
        """Apply one batch of engine events in place."""

    def throttled(self, key: str, seconds: float, call: Callable[[], object]) -> None:
        """Run `call` now, or once when `seconds` have passed since it last ran."""
        if key in self._pending:
            return
        wait = self._last_run.get(key, 0.0) + seconds - time.monotonic()
        if wait <= 0:
            self._last_run[key] = time.monotonic()
            call()
            return
        self._pending.add(key)

        def later() -> None:
            self._pending.discard(key)
            self._last_run[key] = time.monotonic()
            call()

        self.set_timer(wait, later)

    def debounced(self, key: str, seconds: float, call: Callable[[], object]) -> None:
        """Run `call` once `seconds` have passed without another request for `key`."""
        timer = self._debounce.pop(key, None)
        if timer is not None:
            timer.stop()
        self._debounce[key] = self.set_timer(seconds, call)
