"""Actors for the retry tests: fail a job's first N attempts, counted in a file per job."""

from __future__ import annotations

from pathlib import Path

from core.heroscript import ActionContext, ActionFailed, NoRetry, RetryLater
from core.heroscript.child import in_process


def _attempt(folder: str, job_id: int | None) -> int:
    """Count this attempt in `<folder>/<job id>` and return its number (1 for the first)."""
    path = Path(folder) / str(job_id)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("x\n")
    return len(path.read_text(encoding="utf-8").splitlines())


class FlakyActor:
    """Fails on purpose, so retries can be watched."""

    def fail_first(self, ctx: ActionContext, times: int, folder: str) -> int:
        """Fail the job's first `times` attempts; then return the attempt's number."""
        attempt = _attempt(folder, ctx.job_id)
        if attempt <= times:
            raise ActionFailed(f"attempt {attempt} fails on purpose")
        return attempt

    def later(self, ctx: ActionContext, seconds: float, folder: str) -> int:
        """Ask for a retry in `seconds` on the first attempt; succeed on the next."""
        attempt = _attempt(folder, ctx.job_id)
        if attempt == 1:
            raise RetryLater(seconds)
        return attempt

    @in_process
    def later_in_child(self, ctx: ActionContext, seconds: float, folder: str) -> int:
        """`later`, in a child process: the wish crosses the process boundary."""
        return self.later(ctx, seconds, folder)

    def never(self) -> None:
        """Fail for good, whatever retries the job has."""
        raise NoRetry("this cannot work")


ACTORS = {"flaky": FlakyActor}
