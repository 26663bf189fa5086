"""What a running action may know and use: its job, a log, and cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from core.heroscript.model import Action


def _discard(_line: str) -> None:
    return None


@dataclass
class ActionContext:
    """Passed to every action that declares a parameter of this type.

    Attributes:
        job_id: the job running the playbook, or None when run locally.
        log: writes one line to the job's log.
        cancelled: set when the run is cancelled or timed out; a plain ``def``
            action runs in a thread that cannot be interrupted, so a long one
            should check this event and return early.
        action: the action being run (set by the runner).
        executor: where plain ``def`` actions run (None: the loop's default).
        unfinished: threads of plain ``def`` actions that a cancellation left running;
            whoever runs the job waits for them before it takes more work, so a timed-out
            thread still counts against the number of jobs run at once.
    """

    job_id: int | None = None
    log: Callable[[str], None] = _discard
    cancelled: threading.Event = field(default_factory=threading.Event)
    action: Action | None = None
    executor: Executor | None = None
    unfinished: list[asyncio.Future[Any]] = field(default_factory=list)
