"""What a running action may know and use: its job, a log, progress, and cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from core.events import clean_progress
from core.heroscript.model import Action


def _discard(_line: str) -> None:
    return None


def _discard_progress(_fraction: float, _message: str) -> None:
    return None


@dataclass
class ActionContext:
    """Passed to every action that declares a parameter of this type.

    Attributes:
        job_id: the job running the playbook, or None when run locally.
        log: writes one line to the job's log.
        report: where `progress` sends a checked report (whoever runs the job sets it).
        cancelled: set when the run is cancelled or timed out; a plain ``def``
            action runs in a thread that cannot be interrupted, so a long one
            should check this event and return early.
        action: the action being run (set by the runner).
        executor: where plain ``def`` actions run (None: the loop's default).
        unfinished: threads of plain ``def`` actions that a cancellation left running;
            whoever runs the job waits for them before it takes more work, so a timed-out
            thread still counts against the number of jobs run at once.
        inline_run: set by a watchdog running the whole job at once on the loop (every
            action `inline`): they stay there even if one is sent to threads meanwhile.
    """

    job_id: int | None = None
    log: Callable[[str], None] = _discard
    cancelled: threading.Event = field(default_factory=threading.Event)
    action: Action | None = None
    executor: Executor | None = None
    unfinished: list[asyncio.Future[Any]] = field(default_factory=list)
    report: Callable[[float, str], None] = _discard_progress
    inline_run: bool = False

    def progress(self, fraction: float, message: str = "") -> None:
        """Say how far the action is: `fraction` from 0 to 1 and a short message.

        Out-of-range fractions are clamped to 0..1; messages longer than 200
        characters are cut, and control characters become spaces. Call it as often as
        you like from any thread: reports are sent at a bounded rate, and the last one
        always arrives.

        Raises:
            TypeError: the fraction is not a number, or the message is not a string.
            ValueError: the fraction is NaN.
        """
        self.report(*clean_progress(fraction, message))
