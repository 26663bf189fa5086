"""What a running action may know and use: its job, a log, and cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

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
    """

    job_id: int | None = None
    log: Callable[[str], None] = _discard
    cancelled: threading.Event = field(default_factory=threading.Event)
    action: Action | None = None
