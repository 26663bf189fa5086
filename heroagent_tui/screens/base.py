"""A screen that is handed the app context and receives the engine's event batches."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from textual import events, on
from textual.screen import Screen
from textual.timer import Timer

from heroagent_tui.bridge import EngineBatch
from heroagent_tui.context import AppContext

# A screen draws what events changed at most this often, however fast they come: each
# draw of a table re-renders its visible rows, and jobs at full flow send twenty event
# batches a second. A hidden screen draws nothing until it is shown again.
DRAW_EVERY = 0.25


class EngineScreen(Screen[None]):
    """Subscribes to event batches on mount; subclasses load a snapshot, then apply batches."""

    def __init__(self, ctx: AppContext, **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self._last_run: dict[str, float] = {}
        self._pending: set[str] = set()
        self._debounce: dict[str, Timer] = {}
        # Draws asked for while the screen was hidden: run once when it is shown again.
        self._parked: dict[str, Callable[[], object]] = {}
        self.draws: Counter[str] = Counter()
        """Draws `draw_later` ran, by key (tests count them)."""

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

    def draw_later(self, key: str, call: Callable[[], object], every: float = DRAW_EVERY) -> None:
        """Draw with `call` now or within `every` seconds, once however often asked.

        While the screen is hidden (another view, or a screen pushed over it) the draw
        waits until it is shown again; `call` must draw from what the screen kept, so
        running it late (once, for any number of batches) shows the same.
        """

        def draw() -> None:
            if self.is_current:
                self.draws[key] += 1
                call()
            else:
                self._parked[key] = call

        if self.is_current:
            self.throttled(key, every, draw)
        else:
            self._parked[key] = call

    @on(events.ScreenResume)
    def _draw_parked(self) -> None:
        parked, self._parked = self._parked, {}
        for key, call in parked.items():
            self.draws[key] += 1
            call()
