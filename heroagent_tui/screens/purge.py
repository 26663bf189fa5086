"""Purge from a list: ask with the count, delete in the engine, tell how far it got."""

from __future__ import annotations

import time

from core.api import JobFilter
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.screens.confirm import ConfirmScreen

# A long purge says how far it is at most this often (it reports after each 1,000).
PROGRESS_EVERY = 1.0


def purge_question(noun: str, shown: int, complete: bool) -> str:
    """`Purge 3 done jobs?`, or, when the list has more than it loaded, says so."""
    if complete:
        return f"Purge {shown} {noun}?"
    return f"Purge every {noun.removesuffix('s')} matching ({shown} shown, more not loaded)?"


async def purge_confirmed(screen: EngineScreen, flt: JobFilter, question: str, noun: str) -> None:
    """Ask `question`; on yes purge what `flt` finds; the outcome becomes a notification.

    Call it from a worker: the question waits for an answer, and the purge runs in the
    engine's own batches (their file and SQLite work in threads), so the loop stays free.
    Rows leave the lists through the engine's `JobsPurged` events, not from here.
    """
    if not await screen.app.push_screen_wait(ConfirmScreen(question)):
        return
    last = time.monotonic()

    def progress(done: int) -> None:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            screen.notify(f"purging {noun}: {done} so far…", timeout=2)

    try:
        purged = await screen.ctx.api.purge(flt, progress=progress)
    except Exception as exc:  # a refused filter, or the jobs service stopped
        screen.notify(str(exc), severity="error", title="not purged")
        return
    screen.notify(f"{purged} {noun} purged")
