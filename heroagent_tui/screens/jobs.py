"""Jobs: the history from OurDB, newest first, paged lazily, filtered in the engine."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Input, Static

from core.api import JobFilter, JobView
from core.events import JobProgress, JobStateChanged
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.messages import JobOpenRequested, SubmitRequested
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.screens.purge import purge_confirmed, purge_question
from heroagent_tui.widgets.job_table import JobTable
from heroagent_tui.widgets.view_bar import ViewBar

PAGE = 200
# The statuses a purge takes; a filter on any other shows live jobs.
ENDED = ("done", "error")
# Load the next page when the cursor comes this close to the last row.
PREFETCH_ROWS = 40
# Live inserts only while the cursor is near the top, so rows never move under the reader.
LIVE_TOP_ROWS = 20
INSERT_EVERY = 0.5
# Shown rows take their new states at most this often: each update re-renders every
# visible row, and at full flow the engine's events come twenty batches a second. As
# often as inserts, and an insert's rows take the states waiting in the same draw.
APPLY_EVERY = 0.5
# Newer jobs kept for the next insert; beyond that only counted ("N newer, g to show").
MAX_PENDING = 200
# The page that fills in live rows' type and times; beyond it (a rare status filter at a
# high rate) some rows keep the blanks their events left.
MAX_READ_NEWER = 1_000


class JobsScreen(EngineScreen):
    """Browse and act on jobs."""

    TITLE = "Jobs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="jobs.filter"),
        Binding("enter", "open_job", "Open", id="jobs.open"),
        Binding("escape", "clear_filter", "Clear filter", id="jobs.clear"),
        Binding("n", "new_job", "New", id="jobs.submit"),
        Binding("y", "copy_id", "Copy id", id="jobs.copy"),
        Binding("R", "requeue", "Requeue", id="jobs.requeue"),
        Binding("C", "cancel", "Cancel", id="jobs.cancel"),
        Binding("P", "purge", "Purge shown", id="jobs.purge"),
        Binding("g", "top", "Top", show=False, id="jobs.top"),
        Binding("G", "bottom", "Bottom", show=False, id="jobs.bottom"),
        Binding("j", "down", "Down", show=False, id="jobs.down"),
        Binding("k", "up", "Up", show=False, id="jobs.up"),
    ]

    def __init__(self, *args: object, **kwargs: str) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.filter = JobFilter()
        self._exhausted = False
        self._loading = False
        self._unseen = 0
        self._newer: OrderedDict[int, JobStateChanged] = OrderedDict()
        # Events not applied yet (see APPLY_EVERY): each job's newest state and progress.
        self._changed: dict[int, JobStateChanged] = {}
        self._progressed: dict[int, JobProgress] = {}
        # Progress of jobs whose rows are on the way (in `_newer`, or in an insert under
        # way: `_inserting`): a job that reports once, before its row is in, keeps its bar.
        self._early: dict[int, JobProgress] = {}
        self._inserting: set[int] = set()
        self._status_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield ViewBar("jobs")
        yield Input(placeholder="status:error topic:email circle:default text…", id="filter")
        yield JobTable(self.ctx.fmt, self._read_newer, self.ctx.api.jobs_by_id, id="jobs")
        yield Static("", id="jobs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(JobTable).focus()

    def load_snapshot(self) -> None:
        self.query_one(JobTable).clear()
        self._exhausted = False
        self._unseen = 0
        self._newer.clear()
        # The page read now is newer than them.
        self._changed.clear()
        self._progressed.clear()
        self._early.clear()
        self._inserting.clear()
        self._load_page(None)

    def set_filter(self, query: str) -> None:
        """Show only jobs matching `query` (reloads from the engine)."""
        box = self.query_one("#filter", Input)
        box.value = query
        box.display = bool(query)
        try:
            self.filter = JobFilter.parse(query)
        except ValueError as exc:  # a status word the engine does not know
            self.query_one("#jobs-status", Static).update(f"cannot list jobs: {exc}")
            return
        self.load_snapshot()

    @work(exclusive=True, group="page", exit_on_error=False)
    async def _load_page(self, before_id: int | None) -> None:
        self._loading = True
        as_of = time.time()
        try:
            jobs = await self.ctx.api.jobs(self.filter, limit=PAGE, before_id=before_id)
        except Exception as exc:  # a bad status word, or the jobs service not running yet
            self.query_one("#jobs-status", Static).update(f"cannot list jobs: {exc}")
            return
        finally:
            self._loading = False
        self._exhausted = len(jobs) < PAGE
        self.query_one(JobTable).add_jobs(jobs, as_of)
        self._show_status()

    async def _read_newer(self, job_ids: list[int]) -> list[JobView]:
        """The jobs `job_ids`, newer than any shown, with one page read."""
        f = self.filter
        # They are the newest of the filtered queues, so one page below the newest holds
        # them. Not by status: the index follows status changes a little later.
        span = max(job_ids) - min(job_ids) + 1
        return await self.ctx.api.jobs(
            JobFilter(circle=f.circle, topic=f.topic),
            limit=min(span, MAX_READ_NEWER),
            before_id=max(job_ids) + 1,
        )

    def _show_status(self) -> None:
        table = self.query_one(JobTable)
        words = [f"{table.row_count} jobs shown"]
        if not self._exhausted:
            words.append("more below")
        if self._unseen:
            words.append(f"{self._unseen} newer (g to show)")
        text = " · ".join(words)
        if text != self._status_text:
            self._status_text = text
            # One line high (app.tcss): no layout pass, which repaints the whole screen.
            self.query_one("#jobs-status", Static).update(text, layout=False)

    @on(JobTable.RowHighlighted)
    def _maybe_next_page(self, event: JobTable.RowHighlighted) -> None:
        table = self.query_one(JobTable)
        near_end = event.cursor_row >= table.row_count - PREFETCH_ROWS
        if near_end and not self._exhausted and not self._loading:
            self._load_page(table.lowest_id())

    def on_engine_batch(self, batch: EngineBatch) -> None:
        table = self.query_one(JobTable)
        if batch.purged:
            for job_id in batch.purged:
                self._newer.pop(job_id, None)
                self._changed.pop(job_id, None)
                self._progressed.pop(job_id, None)
                self._early.pop(job_id, None)
            if table.remove_jobs(batch.purged):
                self._show_status()
        if not batch.jobs and not batch.progress:
            return
        # Sorted out now, drawn later: what waits is bounded by the rows shown and
        # MAX_PENDING newer jobs, however long the screen stays hidden.
        shown, newer = table.sort_out(list(batch.jobs.values()), self.filter)
        for event in shown:
            self._changed.pop(event.job_id, None)
            self._changed[event.job_id] = event
        for event in newer:
            self._newer.pop(event.job_id, None)
            self._newer[event.job_id] = event
        while len(self._newer) > MAX_PENDING:
            dropped, _ = self._newer.popitem(last=False)
            self._early.pop(dropped, None)
            self._unseen += 1
        rows = table.rows
        for job_id, report in batch.progress.items():
            if str(job_id) in rows:
                self._progressed[job_id] = report
            elif job_id in self._newer or job_id in self._inserting:
                self._early[job_id] = report
        if self._changed or self._progressed:
            self.draw_later("apply", self._apply_changes, every=APPLY_EVERY)
        if self._newer:
            # New rows mean a read and a sort; at most twice a second, however fast jobs come.
            self.draw_later("insert", self._insert_newer, every=INSERT_EVERY)

    def _apply_changes(self) -> None:
        table = self.query_one(JobTable)
        progressed, self._progressed = self._progressed, {}
        changed, self._changed = self._changed, {}
        # Before states: a job that ended in this batch loses its bar.
        table.apply_progress(list(progressed.values()))
        table.apply(list(changed.values()))

    def _insert_newer(self) -> None:
        table = self.query_one(JobTable)
        if table.cursor_row >= LIVE_TOP_ROWS:
            self._unseen += len(self._newer)
            for job_id in self._newer:
                self._early.pop(job_id, None)
        else:
            self._inserting.update(self._newer)
            # The status follows once the rows are in (JobTable.Inserted).
            table.insert_newer(list(self._newer.values()))
        self._newer.clear()
        self._show_status()

    @on(JobTable.Inserted)
    def _inserted(self) -> None:
        rows = self.query_one(JobTable).rows
        for job_id in [job_id for job_id in self._early if str(job_id) in rows]:
            self._progressed[job_id] = self._early.pop(job_id)
        self._inserting = {job_id for job_id in self._inserting if str(job_id) not in rows}
        if len(self._inserting) > MAX_PENDING:
            # Rows an insert dropped (past the rows kept) never come: forget them.
            self._inserting.clear()
        # Only what still waits for its row stays: as bounded as `_newer` and `_inserting`.
        waiting = self._inserting.union(self._newer)
        self._early = {job: report for job, report in self._early.items() if job in waiting}
        if self._changed or self._progressed:
            # Drawn with the new rows: one redraw of the table, not another one soon after.
            self._apply_changes()
        self._show_status()

    # -- actions ---------------------------------------------------------------------------

    def _selected(self) -> int | None:
        table = self.query_one(JobTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(str(key.value))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.set_filter(event.value.strip())
        self.query_one(JobTable).focus()

    def action_clear_filter(self) -> None:
        if self.filter != JobFilter() or self.query_one("#filter", Input).display:
            self.set_filter("")
            self.query_one(JobTable).focus()

    def action_open_job(self) -> None:
        job_id = self._selected()
        if job_id is not None:
            self.post_message(JobOpenRequested(job_id))

    @on(JobTable.RowSelected)
    def _row_selected(self, event: JobTable.RowSelected) -> None:
        event.stop()
        self.action_open_job()

    def action_new_job(self) -> None:
        self.post_message(
            SubmitRequested(circle=self.filter.circle or "", topic=self.filter.topic or "")
        )

    def action_copy_id(self) -> None:
        job_id = self._selected()
        if job_id is not None:
            self.app.copy_to_clipboard(str(job_id))
            self.notify(f"copied job id {job_id}")

    def action_top(self) -> None:
        if self._unseen:
            self.load_snapshot()
        self.query_one(JobTable).move_cursor(row=0)

    def action_bottom(self) -> None:
        table = self.query_one(JobTable)
        table.move_cursor(row=table.row_count - 1)

    def action_down(self) -> None:
        self.query_one(JobTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(JobTable).action_cursor_up()

    @work(exit_on_error=False)
    async def action_requeue(self) -> None:
        job_id = self._selected()
        if job_id is None:
            return
        await job_actions_requeue(self, job_id)

    @work(exit_on_error=False)
    async def action_cancel(self) -> None:
        job_id = self._selected()
        if job_id is None:
            return
        await job_actions_cancel(self, job_id)

    @work(exit_on_error=False)
    async def action_purge(self) -> None:
        flt = self.filter
        if flt.status not in ENDED:
            # Without an ended status the list holds live jobs too: say what to filter on.
            self.notify(
                "purge takes ended jobs: filter on status:done or status:error first",
                severity="warning",
            )
            return
        shown = self.query_one(JobTable).row_count
        if not shown:
            self.notify(f"no {flt.status} jobs to purge")
            return
        noun = f"{flt.status} jobs"
        await purge_confirmed(self, flt, purge_question(noun, shown, self._exhausted), noun)


async def job_actions_requeue(screen: EngineScreen, job_id: int) -> None:
    """Ask, then run an ended job again; errors become a notification."""
    from heroagent_tui.screens.confirm import ConfirmScreen

    if not await screen.app.push_screen_wait(ConfirmScreen(f"Requeue job {job_id}?")):
        return
    try:
        await screen.ctx.api.requeue(job_id)
    except Exception as exc:
        screen.notify(str(exc), severity="error")
    else:
        screen.notify(f"job {job_id} requeued")


async def job_actions_cancel(screen: EngineScreen, job_id: int) -> None:
    """Ask, then cancel a waiting or running job."""
    from heroagent_tui.screens.confirm import ConfirmScreen

    if not await screen.app.push_screen_wait(ConfirmScreen(f"Cancel job {job_id}?")):
        return
    try:
        await screen.ctx.api.cancel(job_id)
    except Exception as exc:
        screen.notify(str(exc), severity="error")
    else:
        screen.notify(f"job {job_id} cancelled")
