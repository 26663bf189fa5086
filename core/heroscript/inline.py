"""Actions cheap enough to run on the event loop itself, without a thread per call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

RUN_INLINE = "run_inline"
# Wall time one call of an inline action may hold the loop: the rule for anything run
# on it. Wall, not CPU, time: blocking I/O (a sleep, a socket) holds the loop as much.
INLINE_BUDGET_SECONDS = 0.001
# Calls over budget in a row that send an action to threads for good. One is not
# enough: on a loaded machine the scheduler can take a cheap call's thread away for a
# millisecond, and a wrong demotion costs speed for the rest of the process.
INLINE_STRIKES = 3

F = TypeVar("F", bound=Callable[..., Any])


def inline(func: F) -> F:
    """Mark a plain ``def`` action as cheap: it runs on the event loop, not in a thread.

    For actions that return in well under a millisecond and never block (no I/O, no
    waiting): the call then costs no thread hand-over, and a watchdog runs a job made
    only of such actions without a task of its own. A call cannot be interrupted, so a
    job's timeout is checked when it returns: past it, the job ends in a timeout error.
    An action that takes longer than `INLINE_BUDGET_SECONDS` on `INLINE_STRIKES` calls
    in a row runs in a thread from then on, with a warning. Ignored on ``async def``
    and `in_process` actions, which have their own way to run.
    """
    setattr(func, RUN_INLINE, True)
    return func


class InlineBudget:
    """Whether one inline action still runs on the loop, from how long its calls take."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.allowed = True
        self._strikes = 0

    def spent(self, seconds: float) -> None:
        """Count one call; the last of too many slow ones in a row sends it to threads."""
        if seconds <= INLINE_BUDGET_SECONDS:
            self._strikes = 0
            return
        self._strikes += 1
        if self._strikes >= INLINE_STRIKES and self.allowed:
            self.allowed = False
            log.warning(
                "inline action %s held the event loop %.1f ms (budget %.1f ms) %d calls "
                "in a row; it runs in a thread from now on",
                self.method,
                seconds * 1000,
                INLINE_BUDGET_SECONDS * 1000,
                self._strikes,
            )
