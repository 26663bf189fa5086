"""Scheduled: jobs waiting for a time (a delay, a retry's backoff), soonest first, counting down."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from core.api import JobFilter, JobView
from heroagent_tui.screens.job_list import JobListScreen, list_bindings
from heroagent_tui.screens.jobs import job_actions_cancel
from heroagent_tui.widgets.job_table import attempt_of

# The countdowns are redrawn this often; nothing is read from the engine for them.
TICK_SECONDS = 1.0


def waiting_for(job: JobView) -> str:
    """Why the job waits: its parents, a retry after an attempt's error, or a delay."""
    if job.wait_for:
        return "parents: " + ", ".join(str(i) for i in job.wait_for)
    return f"retry: {job.error_kind}" if job.error_kind else "delay"


class ScheduledScreen(JobListScreen):
    """Each job's queue, next attempt (n/m) and a live countdown to its `run_at`."""

    TITLE = "Scheduled"
    MODE = "scheduled"
    STATUS = "scheduled"
    NOUN = ("scheduled job", "scheduled jobs")
    COLUMNS = ("runs", "at", "attempt", "why", "last error")
    BINDINGS: ClassVar[list[BindingType]] = [
        *list_bindings("scheduled"),
        Binding("C", "cancel", "Cancel", id="scheduled.cancel"),
    ]

    async def fetch(self, limit: int) -> list[JobView]:
        return await self.ctx.api.jobs(JobFilter(status="scheduled"), limit=limit)

    def belongs(self, job: JobView) -> bool:
        return job.status == "scheduled"

    def sort_key(self, job: JobView) -> tuple[float, ...]:
        return (job.run_at, job.job_id)

    def cells(self, job: JobView) -> tuple[object, ...]:
        fmt = self.ctx.fmt
        return (
            # A job waiting for its parents has no time: it runs when they are done.
            fmt.countdown(job.run_at) if job.run_at else "after parents",
            fmt.timestamp(job.run_at),
            # The attempt it waits to make: the one after those already made.
            attempt_of(job, job.attempts + 1),
            waiting_for(job),
            self.error_cell(job),
        )

    def on_mount(self) -> None:
        self.set_interval(TICK_SECONDS, self._tick)

    def _tick(self) -> None:
        table = self.query_one("#job-list", DataTable)
        for job in self.jobs.values():
            key = str(job.job_id)
            if key in table.rows and job.run_at:
                table.update_cell(key, "runs", self.ctx.fmt.countdown(job.run_at))

    @work(exit_on_error=False)
    async def action_cancel(self) -> None:
        job_id = self.selected()
        if job_id is not None:
            await job_actions_cancel(self, job_id)
