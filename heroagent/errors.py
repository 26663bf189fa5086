"""The client's errors: the engine API's typed errors, and those only a client can meet."""

from __future__ import annotations

from typing import Any

from core.api import JobView, Problem
from core.api.errors import ERRORS_BY_KIND, EngineError, JobRefused
from core.channel import RequestError


class ClientError(EngineError):
    """The client got no answer it could use (the outcome of the request is unknown)."""

    kind = "client"


class EngineUnreachable(ClientError, ConnectionError):
    """No engine answered: its Redis server cannot be reached, or nothing serves requests."""

    kind = "no_engine"


class WaitTimeout(ClientError, TimeoutError):
    """A job did not end within the time a wait was given; it goes on running."""

    kind = "wait_timeout"

    def __init__(self, message: str, pending: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.pending = pending


class JobFailed(EngineError):
    """The job ended in error; `job` is its final state (`job.error` says why)."""

    kind = "failed"

    def __init__(self, job: JobView) -> None:
        super().__init__(f"job {job.job_id} failed: {job.error}")
        self.job = job


def typed_error(exc: RequestError) -> EngineError:
    """The typed error for a refusal the engine sent over the request channel."""
    if exc.kind == "no_engine":
        return EngineUnreachable(str(exc))
    if exc.kind == "no_reply":
        return ClientError(str(exc))
    cls = ERRORS_BY_KIND.get(exc.kind)
    if cls is None:
        error = EngineError(str(exc))
        error.kind = exc.kind  # an engine-side kind the client does not know, kept as is
        return error
    if issubclass(cls, JobRefused):
        reply = exc.reply
        index = reply.get("index")
        return cls(
            str(exc),
            line=_int(reply.get("line")),
            col=_int(reply.get("col")),
            problems=tuple(_problem(p) for p in reply.get("problems") or () if isinstance(p, dict)),
            index=index if isinstance(index, int) else None,
        )
    return cls(str(exc))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _problem(data: dict[str, Any]) -> Problem:
    end_col = data.get("end_col")
    return Problem(
        line=_int(data.get("line")),
        col=_int(data.get("col")),
        message=str(data.get("message", "")),
        severity=str(data.get("severity", "error")),
        end_col=end_col if isinstance(end_col, int) else None,
    )
