"""The job history table: newest first, paged on demand, updated in place by events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.message import Message
from textual.theme import Theme
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, Row, RowKey

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


def _width(cell: object) -> int:
    """A one-line cell's width, as DataTable's measure finds it."""
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


def status_text(theme: Theme, status: str) -> Text:
    """A status word in its theme colour (new: plain, active: accent, done, error)."""
    colour = {"active": theme.accent, "done": theme.success, "error": theme.error}.get(status)
    return Text(status, style=Style(color=colour) if colour else "")


class JobTable(DataTable[object]):
    """Rows keyed by job id; the id cell holds an int so sorting puts the newest first."""

    class Inserted(Message):
        """Rows for newer jobs went in (after their read, when there is one)."""

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
        """Reads new jobs by id before their rows go in: the fields an event lacks."""
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
        """Remove every row (and forget the newest id); inserts under way are dropped."""
        self.workers.cancel_group(self, "insert")
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
            Text(self.fmt.progress(job.progress) if job.status == "active" else ""),
            Text(f"{job.circle}/{job.topic}"),
            Text(job.params_type),
            Text(self._when(job)),
            Text(self.fmt.duration(job.duration)),
            Text(attempt_cell(job)),
            Text(first_line(job.error)),
        )

    def _when(self, job: JobView) -> str:
        """When it was submitted, or for a job waiting to run again, when that is."""
        if job.status == "scheduled" and job.run_at:
            return f"next {self.fmt.timestamp(job.run_at)}"
        return self.fmt.timestamp(job.time_scheduled)

    def sort_out(
        self, events: list[JobStateChanged], flt: JobFilter
    ) -> tuple[list[JobStateChanged], list[JobStateChanged]]:
        """Split events into those of shown rows and those of newer matching jobs not shown.

        Nothing is drawn: the screen keeps both (bounded: the shown rows, and a few newer
        ones) until it draws. Events of other jobs (older ones paged out) are dropped.
        """
        shown, newer = [], []
        top = self.highest_id()
        rows = self.rows
        for event in events:
            if str(event.job_id) in rows:
                shown.append(event)
            # A fast job may be done before its first batch: any newer id counts, not only `new`.
            elif event.job_id > top and flt.matches(event):
                newer.append(event)
        return shown, newer

    def apply(self, events: list[JobStateChanged]) -> None:
        """Put the states of shown jobs into their rows."""
        stale = []
        for event in events:
            if str(event.job_id) in self.rows:
                self._apply_state(event)
                if event.status == "scheduled" or event.job_id in self._retrying:
                    stale.append(event.job_id)
        if stale and self.reread is not None:
            self.run_worker(self._fill(stale, self.reread), group="reread", exit_on_error=False)

    def _apply_state(self, event: JobStateChanged) -> None:
        key = str(event.job_id)
        self.update_cell(key, "status", self._status(event.status))
        if event.status != "active":
            self.update_cell(key, "progress", Text())  # a bar only while it runs
        if event.error:
            self.update_cell(key, "error", Text(first_line(event.error)))

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
                self.update_cell(key, "progress", Text(self.fmt.progress(event.fraction)))

    def insert_newer(self, events: list[JobStateChanged]) -> None:
        """Add rows for jobs newer than any shown, keep newest first, drop the oldest rows.

        An event has no type, scheduled time or duration: with a `lookup`, the jobs are
        read first (one read for all of them) and each row is added whole, so the table
        is changed and drawn once per insert, not once more per filled cell.
        """
        if self.lookup is None:
            self._add_newer(events, {})
        else:
            self.run_worker(self._read_then_add(events, self.lookup), group="insert")

    async def _read_then_add(
        self, events: list[JobStateChanged], read: Callable[[list[int]], Awaitable[list[JobView]]]
    ) -> None:
        try:
            jobs = {job.job_id: job for job in await read([e.job_id for e in events])}
        except Exception:  # the jobs service is stopping: the rows keep the events' blanks
            jobs = {}
        self._add_newer(events, jobs)

    def _add_newer(self, events: list[JobStateChanged], jobs: dict[int, JobView]) -> None:
        fresh: dict[int, tuple[object, ...]] = {}
        for event in events:
            if str(event.job_id) in self.rows:
                # Added by an insert whose read was under way when this event came.
                self._apply_state(event)
                continue
            job = jobs.get(event.job_id)
            fresh[event.job_id] = self._event_cells(event, job)
            if job is not None and job.retries:
                self._retrying.add(job.job_id)
        if not fresh:
            return
        if min(fresh) > self._highest:
            self._put_on_top(sorted(fresh.items(), reverse=True))
        else:
            # Older than a shown row (two inserts crossed): added and sorted in.
            for job_id, cells in fresh.items():
                self.add_row(*cells, key=str(job_id))
            self.sort("id", reverse=True)
            self._trim()
        self._highest = max(self._highest, *fresh)
        self.post_message(self.Inserted())

    def _put_on_top(self, fresh: list[tuple[int, tuple[object, ...]]]) -> None:
        """Put rows newer than every shown one on top, and drop the oldest past the bound.

        One pass over the table's own row stores (textual is pinned), instead of an
        `add_row` each, a sort and a trim: the new order is known (they are newer than
        every row, newest first), and their widths are their texts' lengths. Textual's
        own measuring of added rows (rich's measure for each cell) was most of the cost
        of an insert at full flow.
        """
        columns = self.ordered_columns
        added = []
        for job_id, cells in fresh:
            key = RowKey(str(job_id))
            self._data[key] = {c.key: cell for c, cell in zip(columns, cells, strict=True)}
            self.rows[key] = Row(key, 1)
            for column, cell in zip(columns, cells, strict=True):
                column.content_width = max(column.content_width, _width(cell))
            added.append(key)
        locations = self._row_locations
        shown = (locations.get_key(index) for index in range(len(locations)))
        order = added + [key for key in shown if key is not None]
        for key in order[MAX_LIVE_ROWS:]:
            for column_key in self._data.pop(key):
                self._updated_cells.discard(CellKey(key, column_key))
            del self.rows[key]
            self._retrying.discard(int(str(key.value)))
        self._row_locations = TwoWayDict({key: i for i, key in enumerate(order[:MAX_LIVE_ROWS])})
        self._changed_rows()

    def _changed_rows(self) -> None:
        """After rows were added or removed behind DataTable's back: one refresh.

        Not a layout refresh (as remove_row does): the table's size is set by the
        screen, and the new virtual size (on idle) moves only its scrollbar; a layout
        pass repaints the whole screen, about as much as the rest of an insert.
        """
        self._require_update_dimensions = True
        self._update_count += 1
        # Re-set to clamp them into the rows that are left.
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self.check_idle()
        self.refresh()

    def _event_cells(self, event: JobStateChanged, job: JobView | None) -> tuple[object, ...]:
        """A row from a job's newest event, and what was read of the job, if anything.

        Status and error come from the event: it may be newer than the read.
        """
        status, error = self._status(event.status), Text(first_line(event.error))
        if job is None:
            queue, when = Text(f"{event.circle}/{event.topic}"), Text(self.fmt.timestamp(event.ts))
            return (event.job_id, status, Text(), queue, Text(), when, Text(), Text(), error)
        progress = job.progress if event.status == "active" and job.status == "active" else None
        return (
            job.job_id,
            status,
            Text(self.fmt.progress(progress)),
            Text(f"{job.circle}/{job.topic}"),
            Text(job.params_type),
            Text(self._when(job)),
            Text(self.fmt.duration(job.duration)),
            Text(attempt_cell(job)),
            error,
        )

    async def _fill(
        self, job_ids: list[int], read: Callable[[list[int]], Awaitable[list[JobView]]]
    ) -> None:
        try:
            # All at once: one read per batch of events, whatever the rate, not one per job.
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
        self.update_cell(key, "type", Text(job.params_type))
        self.update_cell(key, "scheduled", Text(self._when(job)))
        self.update_cell(key, "attempt", Text(attempt_cell(job)))
        if job.retries:
            self._retrying.add(job.job_id)
        if job.duration is not None:
            self.update_cell(key, "took", Text(self.fmt.duration(job.duration)))
        if job.status == "active" and job.progress is not None:
            # A report that came before the row did.
            self.update_cell(key, "progress", Text(self.fmt.progress(job.progress)))

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
        self._changed_rows()
