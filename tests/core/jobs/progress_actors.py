"""Actors for the progress tests: reports from a thread, a child process, and bad ones."""

from __future__ import annotations

import asyncio
import time

from core.heroscript import ActionContext
from core.heroscript.child import in_process


class ProgressActor:
    """Reports progress in the ways real actions do."""

    def flood(self, ctx: ActionContext, count: int, pause: float = 0.0) -> int:
        """Report ``count`` steps from a worker thread, ``pause`` seconds apart."""
        for step in range(1, count + 1):
            ctx.progress(step / count, f"step {step}")
            time.sleep(pause)
        ctx.progress(1.0, "done")
        return count

    async def halfway(self, ctx: ActionContext) -> None:
        """Report half done, then wait until cancelled."""
        ctx.progress(0.5, "halfway")
        await asyncio.Event().wait()

    @in_process
    def child(self, ctx: ActionContext, steps: int) -> int:
        """Report ``steps`` steps from a child process."""
        for step in range(1, steps + 1):
            ctx.progress(step / steps, f"child step {step}")
        return steps

    def bad(self, ctx: ActionContext) -> None:
        """Report a fraction that is not a number."""
        ctx.progress(float("nan"))


ACTORS = {"progress": ProgressActor}
