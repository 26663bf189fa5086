"""Dead: jobs that ended in error after their last allowed attempt; requeue one or all."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType

from core.api import JobFilter, JobView
from heroagent_tui.screens.confirm import ConfirmScreen
from heroagent_tui.screens.job_list import JobListScreen, list_bindings
from heroagent_tui.screens.jobs import job_actions_requeue
from heroagent_tui.screens.purge import purge_confirmed, purge_question
from heroagent_tui.widgets.job_table import attempt_of


class DeadScreen(JobListScreen):
    """Dead letters, newest first, with why they died, their attempts and when."""

    TITLE = "Dead"
    MODE = "dead"
    STATUS = "error"
    NOUN = ("dead letter", "dead letters")
    COLUMNS = ("reason", "error", "attempts", "finished")
    BINDINGS: ClassVar[list[BindingType]] = [
        *list_bindings("dead"),
        Binding("R", "requeue", "Requeue", id="dead.requeue"),
        Binding("ctrl+r", "requeue_all", "Requeue all", id="dead.requeue_all"),
        Binding("P", "purge_all", "Purge all", id="dead.purge"),
    ]

    async def fetch(self, limit: int) -> list[JobView]:
        return await self.ctx.api.dead(limit=limit)

    def belongs(self, job: JobView) -> bool:
        return job.dead

    def cells(self, job: JobView) -> tuple[object, ...]:
        return (
            job.error_kind,
            self.error_cell(job),
            attempt_of(job, job.attempts),
            self.ctx.fmt.timestamp(job.time_end),
        )

    @work(exit_on_error=False)
    async def action_requeue(self) -> None:
        job_id = self.selected()
        if job_id is not None:
            await job_actions_requeue(self, job_id)

    @work(exit_on_error=False)
    async def action_requeue_all(self) -> None:
        count = len(self.jobs)
        if not count:
            return
        if self.complete:
            question = f"Requeue all {count} dead letters?"
        else:
            question = f"Requeue every dead letter ({count} shown, more not loaded)?"
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        try:
            requeued = await self.ctx.api.requeue_many(JobFilter(dead=True))
        except Exception as exc:
            self.notify(str(exc), severity="error")
        else:
            self.notify(f"{len(requeued)} dead letters requeued")

    @work(exit_on_error=False)
    async def action_purge_all(self) -> None:
        count = len(self.jobs)
        if not count:
            self.notify("no dead letters to purge")
            return
        question = purge_question("dead letters", count, self.complete)
        await purge_confirmed(self, JobFilter(dead=True), question, "dead letters")
