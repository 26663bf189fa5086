"""The job history table: newest first, paged on demand, updated in place by events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.cells import cell_len, set_cell_size
from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import Reactive
from textual.strip import Strip
from textual.theme import Theme
from textual.widgets import DataTable
from textual.widgets._data_table import RowRenderables
from textual.widgets.data_table import CellKey, Row, RowKey

from core.api import JobFilter, JobView
from core.events import JobProgress, JobStateChanged
from heroagent_tui.format import DisplayFormat

# A cell's or a row's lines of segments, as DataTable's renders hand them on.
SegmentLines = list[list[Segment]]
COLUMNS = ("id", "status", "progress", "queue", "type", "scheduled", "took", "attempt", "error")
# Rows kept when live inserts push old ones out at the bottom (paging brings them back).
MAX_LIVE_ROWS = 2_000
# DataTable's render caches hold this many screens of rows. Every change of a cell
# makes all their entries stale (their keys carry an update count), and its own sizes
# (10,000 cells, 1,000 rows and lines) kept tens of thousands of stale segment lists
# alive: objects every full garbage collection walks, on the loop a key waits on.
CACHED_SCREENS = 3
# Meta styles kept for the places drawn (a screen is a few hundred cells).
MAX_METAS = 4_096


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
    if isinstance(cell, Text):
        return cell.cell_len
    text = str(cell)
    # Printable ASCII is one cell a character (most cells: ids, times, queue names).
    return len(text) if text.isascii() and text.isprintable() else cell_len(text)


def _rich(cell: object) -> bool:
    """A cell Rich has to render: a renderable, or a tab or another control character."""
    return isinstance(cell, Text) or (isinstance(cell, str) and not cell.isprintable())


def _plain(cell: object) -> Text:
    """A cell's text as it is: never parsed as Rich markup (an error may hold brackets)."""
    return Text(str(cell), no_wrap=True, end="")


def status_style(theme: Theme, status: str) -> Style | None:
    """A status word's theme colour (new: none, active: accent, done, error)."""
    colour = {"active": theme.accent, "done": theme.success, "error": theme.error}.get(status)
    return Style(color=colour) if colour else None


def status_text(theme: Theme, status: str) -> Text:
    """A status word in its theme colour."""
    return Text(status, style=status_style(theme, status) or "")


class JobTable(DataTable[object]):
    """Rows keyed by job id; the id cell holds an int so sorting puts the newest first.

    The other cells hold plain strings, turned into `Text` only for the rows drawn
    (the status in its theme colour): 2,000 rows of `Text` cells were some 50,000
    objects for the garbage collector to walk, and a full collection held the loop
    for a quarter of a second at full flow.
    """

    class Inserted(Message):
        """Rows for newer jobs went in (after their read, when there is one)."""

    # The table's region is the screen's to set: a new virtual size (rows came or went,
    # a column widened) moves its scrollbars, and only a scrollbar that comes or goes
    # (a reactive of its own, which asks for one) changes the layout. Textual's asks for
    # a layout of the whole screen at every change: 20-40 ms of the loop, twice a second
    # while live inserts fill the table up to its bound.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

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
        # When each shown row's status was true (wall clock): a page's read began, or
        # an event was made. An older event is one the row has moved past: a live insert
        # can bring one after a newer state went in, and the row would show it for good.
        self._as_of: dict[int, float] = {}
        self._metas: dict[tuple[object, ...], tuple[Style, Style]] = {}
        self._extends: dict[tuple[object, ...], Style] = {}
        self._row_cache: LRUCache[tuple[object, ...], tuple[SegmentLines, SegmentLines]]
        self._row_cache = LRUCache(1_000)
        self._frame_style: Style | None = None

    def watch_virtual_size(self) -> None:
        if self.is_scrollable:
            self._scroll_update(self.virtual_size)
        self.refresh()

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)

    def on_resize(self, event: events.Resize) -> None:
        rows = max(1, event.size.height) * CACHED_SCREENS
        self._cell_render_cache = LRUCache(rows * len(COLUMNS))
        self._row_cache = LRUCache(rows)
        self._row_render_cache = LRUCache(rows)
        self._row_renderable_cache = LRUCache(rows)
        self._line_cache = LRUCache(rows)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """A body cell's line, made from its string: what DataTable's render makes of it.

        Rows are drawn whole by `_render_line_in_row`; this is for DataTable's own calls
        of one cell. The header, a cell that holds a renderable of its own or a control
        character, go through DataTable's render.
        """
        row_key = self._row_locations.get_key(row_index) if row_index >= 0 else None
        column_key = self._column_locations.get_key(column_index)
        row = self.rows.get(row_key) if row_key is not None else None
        data = self._data.get(row_key) if row_key is not None else None
        cell = data.get(column_key) if data is not None and column_key is not None else None
        if row_key is None or column_key is None or row is None or row.height != 1 or _rich(cell):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            row_index < self.fixed_rows or column_index < self.fixed_columns,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        style, plain = self._place_styles(
            row_index, column_index, base_style, component_style, post_style
        )
        status = column_key.value == "status"
        lines = [self._cell_line(cell, status, style, post_style, plain, width)]
        self._cell_render_cache[cache_key] = lines
        return lines

    def _place_styles(
        self, row_index: int, column_index: int, row_style: Style, component: Style, post: Style
    ) -> tuple[Style, Style]:
        """A cell's style (its row's, its place's meta, the cursor's) and that plus `post`.

        One meta style per place, and the sums kept: Rich caches a sum of styles by its
        terms in a small cache that a screen of cells (each with its own meta) overruns.
        """
        key = (row_index, column_index, row_style, component, post)
        styles = self._metas.get(key)
        if styles is None:
            if len(self._metas) >= MAX_METAS:
                self._metas.clear()
            meta = Style.from_meta({"row": row_index, "column": column_index})
            style = row_style + meta + component
            styles = self._metas[key] = (style, style + post)
        return styles

    def _cell_line(
        self, cell: object, status: bool, style: Style, post: Style, plain: Style, width: int
    ) -> list[Segment]:
        """The segments of a one-line cell: padding and fill in `plain`, the text cropped.

        What DataTable makes of the cell through Rich (a `Text` in `Padding` in `Styled`,
        split and cropped into lines), about 0.1 ms a cell, made here directly; a status
        word also takes its theme colour.
        """
        pad = self.cell_padding
        inner = max(0, width - 2 * pad)
        text = "" if cell is None else str(cell)
        if cell_len(text) > inner:
            text = set_cell_size(text, inner)
        line: list[Segment] = []
        if pad:
            line.append(Segment(" " * pad, plain))
        if text:
            colour = status_style(self.app.current_theme, text) if status else None
            line.append(Segment(text, style + colour + post if colour else plain))
        fill = inner - cell_len(text)
        if fill:
            line.append(Segment(" " * fill, plain))
        if pad:
            line.append(Segment(" " * pad, plain))
        return line

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> tuple[SegmentLines, SegmentLines]:
        """A body row's line in one pass: what DataTable's cell by cell render makes.

        DataTable renders a row cell by cell, each reading a dozen reactive attributes
        and summing its styles anew, and keys its cache by the cursor's place, so a
        frame after any change redrew every row shown at about 1.5 ms a row: 20 ms of
        the loop for a screen of them. Here the row's styles are found once (a row
        cursor highlights the whole row), and the cache is keyed by whether this row
        has the cursor, so a cursor move redraws only the two rows it changes.
        """
        data = self._data.get(row_key)
        row = self.rows.get(row_key)
        row_index = self._row_locations.get(row_key)
        if (
            data is None
            or row is None
            or row_index is None
            or row.height != 1
            or line_no != 0
            or self.cursor_type != "row"
            or self.fixed_rows
            or self.fixed_columns
            or (self._labelled_row_exists and self.show_row_labels)
        ):
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        cursor = row_index == cursor_location.row
        hover = row_index == hover_location.row
        cache_key = (
            row_key,
            row_index,
            base_style,
            cursor,
            hover,
            show_cursor,
            show_hover,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._row_cache.get(cache_key)
        if cached is not None:
            return cached
        row_style = self._get_row_style(row_index, base_style)
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            show_cursor,
            show_hover,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        cells: SegmentLines = []
        used = self._row_label_column_width
        for column_index, column in enumerate(self.ordered_columns):
            width = column.get_render_width(self)
            used += width
            cell = data.get(column.key)
            if _rich(cell):
                rendered = self._render_cell(
                    row_index, column_index, row_style, width, cursor, hover
                )
                cells.append(rendered[0])
                continue
            style, plain = self._place_styles(
                row_index, column_index, row_style, component_style, post_style
            )
            status = column.key.value == "status"
            cells.append(self._cell_line(cell, status, style, post_style, plain, width))
        # As DataTable extends the row to the table's width (its cursor style, no post).
        extend, _ = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, show_cursor, show_hover, False, False
        )
        extend_key = (row_index, row_style, extend)
        extend_style = self._extends.get(extend_key)
        if extend_style is None:
            if len(self._extends) >= MAX_METAS:
                self._extends.clear()
            meta = Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
            extend_style = self._extends[extend_key] = row_style + extend + meta
        cells.append([Segment(" " * max(0, self.size.width - used), extend_style)])
        pair: tuple[SegmentLines, SegmentLines] = ([], cells)
        self._row_cache[cache_key] = pair
        return pair

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._row_cache.clear()

    def notify_style_update(self) -> None:
        self._row_cache.clear()
        super().notify_style_update()

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style walks every ancestor's styles: once a frame, not once a line.
        self._frame_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None

    def render_line(self, y: int) -> Strip:
        style = self._frame_style
        if style is None or self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if not self.show_header or y >= self.header_height:
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, style)

    def _compute_row_renderables(self, row_index: int) -> RowRenderables:
        key = self._row_locations.get_key(row_index) if row_index >= 0 else None
        data = self._data.get(key) if key is not None else None
        if data is None:
            return super()._compute_row_renderables(row_index)
        cells: list[RenderableType] = []
        for column in self.ordered_columns:
            cell = data.get(column.key, "")
            if isinstance(cell, Text):
                cells.append(cell)
            elif column.key.value == "status":
                cells.append(self._status(str(cell)))
            else:
                cells.append(_plain(cell))
        return RowRenderables(None, cells)

    def lowest_id(self) -> int | None:
        """The oldest job shown: the next page starts below it."""
        if not self.row_count:
            return None
        return min(int(str(key.value)) for key in self.rows)

    def add_jobs(self, jobs: list[JobView], as_of: float) -> None:
        """Append a page (already newest first), read from `as_of` (wall clock) on.

        Events made before `as_of` are in the page already (an event is made once its
        state is durable), so they leave these rows as they are.
        """
        fresh = []
        for job in jobs:
            if str(job.job_id) not in self.rows:
                fresh.append((job.job_id, self._cells(job)))
                self._as_of[job.job_id] = as_of
                self._highest = max(self._highest, job.job_id)
                if job.retries:
                    self._retrying.add(job.job_id)
        if fresh:
            self._set_order(self._shown_keys() + self._store(fresh))

    def clear(self, columns: bool = False) -> JobTable:
        """Remove every row (and forget the newest id); inserts under way are dropped."""
        self.workers.cancel_group(self, "insert")
        self._highest = 0
        self._retrying.clear()
        self._as_of.clear()
        super().clear(columns)
        return self

    def _status(self, status: str) -> Text:
        text = status_text(self.app.current_theme, status)
        text.no_wrap, text.end = True, ""
        return text

    def _cells(self, job: JobView) -> tuple[object, ...]:
        return (
            job.job_id,
            job.status,
            self.fmt.progress(job.progress) if job.status == "active" else "",
            f"{job.circle}/{job.topic}",
            job.params_type,
            self._when(job),
            self.fmt.duration(job.duration),
            attempt_cell(job),
            first_line(job.error),
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
        if event.ts < self._as_of.get(event.job_id, 0.0):
            return
        self._as_of[event.job_id] = event.ts
        key = str(event.job_id)
        self.update_cell(key, "status", event.status)
        if event.status != "active":
            self.update_cell(key, "progress", "")  # a bar only while it runs
        if event.error:
            self.update_cell(key, "error", first_line(event.error))

    def remove_jobs(self, job_ids: set[int]) -> int:
        """Drop the rows of purged jobs; how many were shown."""
        shown = [job_id for job_id in job_ids if str(job_id) in self.rows]
        for job_id in shown:
            self.remove_row(str(job_id))
            self._retrying.discard(job_id)
            self._as_of.pop(job_id, None)
        return len(shown)

    def apply_progress(self, events: list[JobProgress]) -> None:
        """Put the newest progress of shown jobs into their rows."""
        for event in events:
            key = str(event.job_id)
            if key in self.rows:
                self.update_cell(key, "progress", self.fmt.progress(event.fraction))

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
            self._as_of[event.job_id] = event.ts
            if job is not None and job.retries:
                self._retrying.add(job.job_id)
        if not fresh:
            return
        added = self._store(sorted(fresh.items(), reverse=True))
        if min(fresh) > self._highest:
            order = added + self._shown_keys()
        else:
            # Older than a shown row (two inserts crossed): sorted in.
            order = sorted(
                self._shown_keys() + added, key=lambda k: int(str(k.value)), reverse=True
            )
        self._set_order(order, keep=MAX_LIVE_ROWS)
        self._highest = max(self._highest, *fresh)
        self.post_message(self.Inserted())

    def _store(self, rows: list[tuple[int, tuple[object, ...]]]) -> list[RowKey]:
        """Put rows in the table's own stores (textual is pinned); `_set_order` places them.

        Instead of an `add_row` each, a sort and a trim: the new order is known, and the
        widths are the texts' lengths. Textual's own measuring of added rows (rich's
        measure for each cell, which parses a string as markup) was most of the cost of
        an insert at full flow.
        """
        columns = self.ordered_columns
        column_keys = [column.key for column in columns]
        data, table_rows = self._data, self.rows
        keys = []
        for job_id, cells in rows:
            key = RowKey(str(job_id))
            data[key] = dict(zip(column_keys, cells, strict=True))
            table_rows[key] = Row(key, 1)
            keys.append(key)
        for index, column in enumerate(columns):
            widest = max(_width(cells[index]) for _, cells in rows) if rows else 0
            column.content_width = max(column.content_width, widest)
        return keys

    def _shown_keys(self) -> list[RowKey]:
        # By index from the reverse map: int keys, where a row key hashes in Python.
        by_index = self._row_locations._reverse
        return [key for key in map(by_index.get, range(len(by_index))) if key is not None]

    def _set_order(self, order: list[RowKey], keep: int | None = None) -> None:
        """Show the stored rows in `order`, dropping those past `keep`, in one pass."""
        if keep is not None:
            updated = self._updated_cells
            for key in order[keep:]:
                cells = self._data.pop(key)
                if updated:  # cells DataTable is to re-measure: empty unless asked for
                    updated.difference_update(CellKey(key, column_key) for column_key in cells)
                del self.rows[key]
                job_id = int(str(key.value))
                self._retrying.discard(job_id)
                self._as_of.pop(job_id, None)
            order = order[:keep]
        was_empty = not self._row_locations
        self._row_locations = TwoWayDict({key: i for i, key in enumerate(order)})
        self._changed_rows()
        if was_empty and order and self.show_cursor and self.cursor_type != "none":
            # As add_row does: the cursor has a row to highlight now.
            self._highlight_cursor()

    def _changed_rows(self) -> None:
        """After rows were added or removed behind DataTable's back: one refresh.

        Not a layout refresh (as remove_row does): the table's size is set by the
        screen, and the new virtual size (on idle) moves only its scrollbar; a layout
        pass repaints the whole screen, about as much as the rest of an insert.
        """
        self._require_update_dimensions = True
        self._update_count += 1
        # Re-set to clamp them into the rows that are left, only when past them: each
        # re-set refreshes its cell's region, which sums the heights of the rows above.
        rows = len(self._row_locations)
        if self.cursor_coordinate.row >= rows:
            self.cursor_coordinate = self.cursor_coordinate
        if self.hover_coordinate.row >= rows:
            self.hover_coordinate = self.hover_coordinate
        self.check_idle()
        self.refresh()

    def _event_cells(self, event: JobStateChanged, job: JobView | None) -> tuple[object, ...]:
        """A row from a job's newest event, and what was read of the job, if anything.

        Status and error come from the event: it may be newer than the read.
        """
        status, error = event.status, first_line(event.error)
        if job is None:
            queue, when = f"{event.circle}/{event.topic}", self.fmt.timestamp(event.ts)
            return (event.job_id, status, "", queue, "", when, "", "", error)
        progress = job.progress if event.status == "active" and job.status == "active" else None
        return (
            job.job_id,
            status,
            self.fmt.progress(progress),
            f"{job.circle}/{job.topic}",
            job.params_type,
            self._when(job),
            self.fmt.duration(job.duration),
            attempt_cell(job),
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
