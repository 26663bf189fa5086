"""The job history table: newest first, paged on demand, updated in place by events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.style import Style
from rich.text import Text
from textual.theme import Theme
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey

from core.api import JobFilter, JobView
from core.events import JobProgress, JobStateChanged
from heroagent_tui.format import DisplayFormat

COLUMNS = ("id", "status", "progress", "queue", "type", "scheduled", "took", "attempt", "error")
# Rows kept when live inserts push old ones out at the bottom (paging brings them back).
MAX_LIVE_ROWS = 2_000


def attempt_of(job: JobView, attempts: int) -> str:
    """`n/m`: attempt n of the m its retries allow."""
    return f"{attempts}/{job.retries + 1}"


def attempt_cell(job: JobView) -> str:
    """`n/m` for a job that may be retried, a bare count for one handed out again."""
    if job.retries:
        return attempt_of(job, job.attempts)
    return str(job.attempts) if job.attempts > 1 else ""


def first_line(text: str, width: int = 60) -> str:
    """The first line of an error, cut to fit a table cell."""
    return text.splitlines()[0][:width] if text else ""


def status_text(theme: Theme, status: str) -> Text:
    """A status word in its theme colour (new: plain, active: accent, done, error)."""
    colour = {"active": theme.accent, "done": theme.success, "error": theme.error}.get(status)
    return Text(status, style=Style(color=colour) if colour else "")


class JobTable(DataTable[object]):
    """Rows keyed by job id; the id cell holds an int so sorting puts the newest first."""

    def __init__(
        self,
        fmt: DisplayFormat,
        lookup: Callable[[list[int]], Awaitable[list[JobView]]] | None = None,
        reread: Callable[[list[int]], Awaitable[list[JobView]]] | None = None,
        **kwargs: str,
    ) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self.fmt = fmt
        self.lookup = lookup
        """Reads jobs by id, for the fields a row made from an event lacks."""
        self.reread = reread
        """Reads shown jobs by id, for the attempt and next run of retried ones."""
        self._highest = 0
        # Shown jobs with retries: their events change the attempt column, so they are read.
        self._retrying: set[int] = set()

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)

    def lowest_id(self) -> int | None:
        """The oldest job shown: the next page starts below it."""
        if not self.row_count:
            return None
        return min(int(str(key.value)) for key in self.rows)

    def add_jobs(self, jobs: list[JobView]) -> None:
        """Append a page (already newest first)."""
        for job in jobs:
            if str(job.job_id) not in self.rows:
                self.add_row(*self._cells(job), key=str(job.job_id))
                self._highest = max(self._highest, job.job_id)
                if job.retries:
                    self._retrying.add(job.job_id)

    def clear(self, columns: bool = False) -> JobTable:
        """Remove every row (and forget the newest id)."""
        self._highest = 0
        self._retrying.clear()
        super().clear(columns)
        return self

    def _status(self, status: str) -> Text:
        return status_text(self.app.current_theme, status)

    def _cells(self, job: JobView) -> tuple[object, ...]:
        return (
            job.job_id,
            self._status(job.status),
            self.fmt.progress(job.progress) if job.status == "active" else "",
            f"{job.circle}/{job.topic}",
            job.params_type,
            self._when(job),
            self.fmt.duration(job.duration),
            attempt_cell(job),
            Text(job.error.splitlines()[0][:60] if job.error else ""),
        )

    def _when(self, job: JobView) -> str:
        """When it was submitted, or for a job waiting to run again, when that is."""
        if job.status == "scheduled" and job.run_at:
            return f"next {self.fmt.timestamp(job.run_at)}"
        return self.fmt.timestamp(job.time_scheduled)

    def apply(self, events: list[JobStateChanged], flt: JobFilter) -> list[JobStateChanged]:
        """Update shown rows in place; return the newer matching jobs that are not shown."""
        newer = []
        stale = []
        top = self.highest_id()
        for event in events:
            key = str(event.job_id)
            if key in self.rows:
                self.update_cell(key, "status", self._status(event.status))
                if event.status != "active":
                    self.update_cell(key, "progress", "")  # a bar only while it runs
                if event.error:
                    self.update_cell(key, "error", Text(event.error.splitlines()[0][:60]))
                if event.status == "scheduled" or event.job_id in self._retrying:
                    stale.append(event.job_id)
            # A fast job may be done before its first batch: any newer id counts, not only `new`.
            elif event.job_id > top and flt.matches(event):
                newer.append(event)
        if stale and self.reread is not None:
            self.run_worker(self._fill(stale, self.reread), group="reread", exit_on_error=False)
        return newer

    def remove_jobs(self, job_ids: set[int]) -> int:
        """Drop the rows of purged jobs; how many were shown."""
        shown = [job_id for job_id in job_ids if str(job_id) in self.rows]
        for job_id in shown:
            self.remove_row(str(job_id))
            self._retrying.discard(job_id)
        return len(shown)

    def apply_progress(self, events: list[JobProgress]) -> None:
        """Put the newest progress of shown jobs into their rows."""
        for event in events:
            key = str(event.job_id)
            if key in self.rows:
                self.update_cell(key, "progress", self.fmt.progress(event.fraction))

    def insert_newer(self, events: list[JobStateChanged]) -> None:
        """Add rows for jobs newer than any shown, keep newest first, drop the oldest rows."""
        added = []
        for event in events:
            key = str(event.job_id)
            if key in self.rows:
                continue
            cells = (
                event.job_id,
                self._status(event.status),
                "",
                f"{event.circle}/{event.topic}",
                "",
                self.fmt.timestamp(event.ts),
                "",
                "",
                Text(event.error.splitlines()[0][:60] if event.error else ""),
            )
            self.add_row(*cells, key=key)
            added.append(event.job_id)
            self._highest = max(self._highest, event.job_id)
        self.sort("id", reverse=True)
        self._trim()
        if added and self.lookup is not None:
            # An event has no type, scheduled time or duration: read them once from the job.
            self.run_worker(self._fill(added, self.lookup), group="fill", exit_on_error=False)

    async def _fill(
        self, job_ids: list[int], read: Callable[[list[int]], Awaitable[list[JobView]]]
    ) -> None:
        try:
            # All at once: one read per insert, whatever the rate, not one per job.
            jobs = await read(job_ids)
        except Exception:  # the jobs service is stopping: the rows stay as they are
            return
        for job in jobs:
            self.fill_details(job)

    def fill_details(self, job: JobView) -> None:
        """Put a shown job's type, scheduled time, duration and progress into its row.

        Status and error stay as events set them: events newer than `job` may have come
        while it was read.
        """
        key = str(job.job_id)
        if key not in self.rows:
            return
        self.update_cell(key, "type", job.params_type)
        self.update_cell(key, "scheduled", self._when(job))
        self.update_cell(key, "attempt", attempt_cell(job))
        if job.retries:
            self._retrying.add(job.job_id)
        if job.duration is not None:
            self.update_cell(key, "took", self.fmt.duration(job.duration))
        if job.status == "active" and job.progress is not None:
            # A report that came before the row did.
            self.update_cell(key, "progress", self.fmt.progress(job.progress))

    def highest_id(self) -> int:
        """The newest job shown (0 when none)."""
        return self._highest

    def _trim(self) -> None:
        """Drop the oldest rows past `MAX_LIVE_ROWS`; the table is sorted newest first.

        DataTable.remove_row renumbers every row below the one it removes, so trimming a
        few hundred rows one by one cost a second at full flow. The oldest rows are the
        last ones, whose removal renumbers nothing: they go in one pass over the table's
        own row stores (textual is pinned), then one layout refresh.
        """
        if self.row_count <= MAX_LIVE_ROWS:
            return
        locations = self._row_locations
        for index in range(self.row_count - 1, MAX_LIVE_ROWS - 1, -1):
            key = locations.get_key(index)
            if key is None:
                continue
            del locations[key]
            for column_key in self._data.pop(key):
                self._updated_cells.discard(CellKey(key, column_key))
            del self.rows[key]
            self._retrying.discard(int(str(key.value)))
        self._require_update_dimensions = True
        self._update_count += 1
        # Re-set to clamp them into the rows that are left.
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self.check_idle()
        self.refresh(layout=True)
