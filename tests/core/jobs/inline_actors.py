"""Actors for the inline tests: cheap actions that run on the loop, and one that blocks."""

from __future__ import annotations

import threading
import time

from core.heroscript import ActionContext
from core.heroscript.inline import inline


class InlineActor:
    """Inline actions that say where they ran."""

    @inline
    def where(self) -> str:
        """The name of the thread the call ran on."""
        return threading.current_thread().name

    @inline
    def nap(self, seconds: float) -> str:
        """Block for `seconds` (an inline action breaking its promise); where it ran."""
        time.sleep(seconds)
        return threading.current_thread().name

    @inline
    def report(self, ctx: ActionContext) -> str:
        """Report progress once, then end."""
        ctx.progress(1.0, "all done")
        return "reported"


ACTORS = {"inline": InlineActor}
