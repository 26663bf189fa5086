"""Actors for the timeout tests: work that ignores cancellation, in a thread or a child."""

from __future__ import annotations

import os
import time

from core.heroscript import ActionContext
from core.heroscript.child import in_process


class BlockingActor:
    """Blocks without ever looking at ``ctx.cancelled``."""

    def block(self, seconds: float) -> float:
        """Block a worker thread ``seconds`` and return them."""
        time.sleep(seconds)
        return seconds

    @in_process
    def block_in_child(self, ctx: ActionContext, seconds: float) -> int:
        """Block ``seconds`` in a child process (killed on timeout); return its pid."""
        ctx.log(f"child pid {os.getpid()}")
        time.sleep(seconds)
        return os.getpid()


ACTORS = {"blocking": BlockingActor}
