"""The typed errors of the engine API; every message is meant for people as it is."""

from __future__ import annotations

from core.api.views import Problem


class EngineError(RuntimeError):
    """Base of the errors a front end may get from the engine API."""

    kind = "error"


class EngineUnavailable(EngineError):
    """The part of the engine a call needs is not running (the jobs service stopped)."""

    kind = "unavailable"


class JobRefused(EngineError, ValueError):
    """A submission or change was refused; the message says what and where.

    For HeroScript, `line` and `col` (1-based) point at the first problem (0 when
    unknown), and `problems` lists every problem found. In a batch, `index` is the
    refused item's place in it (from 0), and the message starts with "item N: ".
    """

    kind = "refused"

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        col: int = 0,
        problems: tuple[Problem, ...] = (),
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.line = line
        self.col = col
        self.problems = problems
        self.index = index


class JobNotFound(JobRefused, LookupError):
    """No job has this id."""

    kind = "not_found"


class JobEnded(JobRefused):
    """The job has ended already, so it cannot be changed that way (cancel, end twice)."""

    kind = "ended"


class JobNotEnded(JobRefused):
    """The job is still waiting or running, so it cannot be requeued."""

    kind = "not_ended"


class ScheduleNotFound(JobRefused, LookupError):
    """No schedule has this name."""

    kind = "schedule_not_found"


ERRORS_BY_KIND: dict[str, type[EngineError]] = {
    cls.kind: cls
    for cls in (
        EngineError,
        EngineUnavailable,
        JobRefused,
        JobNotFound,
        JobEnded,
        JobNotEnded,
        ScheduleNotFound,
    )
}
