"""A live list of the jobs in one lifecycle state (Scheduled, Dead): read once, kept by events."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from core.api import JobView
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.context import AppContext
from heroagent_tui.messages import JobOpenRequested
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.widgets.job_table import first_line
from heroagent_tui.widgets.view_bar import ViewBar

# Jobs read when the screen opens; beyond them the status line says more exist.
PAGE = 500
# Jobs whose events may bring them in are read by id at most this often, in one call.
READ_EVERY = 0.5


def list_bindings(mode: str) -> list[Binding]:
    """Open and move, with ids under the screen's own name (for `[tui.keymap]`)."""
    return [
        # A priority binding, so the footer shows it over the table's own (hidden) enter.
        Binding("enter", "open_job", "Open", id=f"{mode}.open", priority=True),
        Binding("j", "down", "Down", show=False, id=f"{mode}.down"),
        Binding("k", "up", "Up", show=False, id=f"{mode}.up"),
        Binding("g", "top", "Top", show=False, id=f"{mode}.top"),
        Binding("G", "bottom", "Bottom", show=False, id=f"{mode}.bottom"),
    ]


class JobListScreen(EngineScreen):
    """Jobs that `belongs` keeps, in `sort_key` order; `enter` opens one.

    The list comes from one engine read when the screen opens. After that only events
    change it: a job whose event has another status than `STATUS` leaves at once, and
    jobs whose event has `STATUS` are read by id (batched) to learn whether they belong.
    """

    MODE: ClassVar[str] = ""
    STATUS: ClassVar[str] = ""
    # The columns after id, queue and type, which every list starts with.
    COLUMNS: ClassVar[tuple[str, ...]] = ()
    NOUN: ClassVar[tuple[str, str]] = ("job", "jobs")

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.jobs: dict[int, JobView] = {}
        self.loaded = False
        self._exhausted = True
        self._to_read: set[int] = set()

    async def fetch(self, limit: int) -> list[JobView]:
        """The newest jobs of this list, at most `limit`."""
        raise NotImplementedError

    def belongs(self, job: JobView) -> bool:
        """Whether the job is shown here."""
        raise NotImplementedError

    def cells(self, job: JobView) -> tuple[object, ...]:
        """The cells of `COLUMNS`, after id, queue and type."""
        raise NotImplementedError

    def error_cell(self, job: JobView) -> Text:
        """The first line of the job's (last attempt's) error, as plain text."""
        return Text(self.ctx.fmt.path(first_line(job.error)))

    def sort_key(self, job: JobView) -> tuple[float, ...]:
        """Rows in this order (newest first unless a subclass says otherwise)."""
        return (-job.job_id,)

    def compose(self) -> ComposeResult:
        yield Header()
        yield ViewBar(self.MODE)
        yield DataTable(id="job-list", cursor_type="row")
        yield Static("loading…", id="job-list-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#job-list", DataTable)
        for name in ("id", "queue", "type", *self.COLUMNS):
            table.add_column(name, key=name)
        table.focus()

    def load_snapshot(self) -> None:
        self._load()

    @work(exclusive=True, group="list", exit_on_error=False)
    async def _load(self) -> None:
        try:
            jobs = await self.fetch(PAGE)
        except Exception as exc:  # the jobs service is starting or stopped
            self.query_one("#job-list-status", Static).update(f"cannot list {self.NOUN[1]}: {exc}")
            return
        self._exhausted = len(jobs) < PAGE
        self.jobs = {job.job_id: job for job in jobs if self.belongs(job)}
        self.loaded = True
        self.render_rows()

    def on_engine_batch(self, batch: EngineBatch) -> None:
        left = False
        for job_id in batch.purged:
            self._to_read.discard(job_id)
            if self.jobs.pop(job_id, None) is not None:
                left = True
        for event in batch.jobs.values():
            if event.status == self.STATUS:
                self._to_read.add(event.job_id)
            elif self.jobs.pop(event.job_id, None) is not None:
                left = True
        if left:
            self.render_rows()
        if self._to_read:
            self.throttled("read", READ_EVERY, self._read_pending)

    @work(group="read", exit_on_error=False)
    async def _read_pending(self) -> None:
        ids = sorted(self._to_read)
        self._to_read.clear()
        if len(ids) > PAGE:
            self._load()  # a burst: one page from the index costs less than reading each
            return
        try:
            views = await self.ctx.api.jobs_by_id(ids)
        except Exception:  # one of them vanished, or the service stopped: read the list again
            self._load()
            return
        for view in views:
            if self.belongs(view):
                self.jobs[view.job_id] = view
            else:
                self.jobs.pop(view.job_id, None)
        if len(self.jobs) > PAGE:
            # Bounded however many come: the first PAGE in order stay, the rest are unread.
            kept = sorted(self.jobs.values(), key=self.sort_key)[:PAGE]
            self.jobs = {job.job_id: job for job in kept}
            self._exhausted = False
        self.render_rows()

    def render_rows(self) -> None:
        """Show `jobs` in order; the cursor stays on the job it was on."""
        table = self.query_one("#job-list", DataTable)
        selected = self.selected()
        table.clear()
        for job in sorted(self.jobs.values(), key=self.sort_key):
            lead = (job.job_id, job.queue, job.params_type)
            table.add_row(*lead, *self.cells(job), key=str(job.job_id))
        if selected is not None and str(selected) in table.rows:
            table.move_cursor(row=table.get_row_index(str(selected)))
        count = len(self.jobs)
        words = [f"{count} {self.NOUN[count != 1]}"]
        if not self._exhausted:
            words.append("more not loaded")
        self.query_one("#job-list-status", Static).update(" · ".join(words))

    @property
    def complete(self) -> bool:
        """Whether every job of this list is shown (none left unread in the engine)."""
        return self._exhausted

    def selected(self) -> int | None:
        """The job id under the cursor."""
        table = self.query_one("#job-list", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(str(key.value))

    def action_open_job(self) -> None:
        job_id = self.selected()
        if job_id is not None:
            self.post_message(JobOpenRequested(job_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_job()

    def action_down(self) -> None:
        self.query_one("#job-list", DataTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#job-list", DataTable).action_cursor_up()

    def action_top(self) -> None:
        self.query_one("#job-list", DataTable).move_cursor(row=0)

    def action_bottom(self) -> None:
        table = self.query_one("#job-list", DataTable)
        table.move_cursor(row=table.row_count - 1)
