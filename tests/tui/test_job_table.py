"""The job table: its newest rows past its bound, and a row never goes back to an older state."""

from __future__ import annotations

import pytest
from rich.segment import Segment
from rich.style import Style
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from core.api import JobView
from core.events import JobStateChanged
from heroagent_tui.format import DisplayFormat
from heroagent_tui.widgets import job_table
from heroagent_tui.widgets.job_table import JobTable


class _TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield JobTable(DisplayFormat())


def _events(first: int, last: int) -> list[JobStateChanged]:
    return [
        JobStateChanged(job_id=i, circle="c", topic="t", status="done")
        for i in range(first, last + 1)
    ]


async def test_live_inserts_past_the_bound_drop_the_oldest_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(job_table, "MAX_LIVE_ROWS", 50)
    app = _TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(JobTable)
        table.insert_newer(_events(1, 40))
        table.move_cursor(row=39)
        await pilot.pause()
        table.insert_newer(_events(41, 70))
        await pilot.pause()
        assert table.row_count == 50
        # Newest first, and every kept row where the table says it is.
        assert [int(str(row.key.value)) for row in table.ordered_rows] == list(range(70, 20, -1))
        assert all(table.get_row_index(str(i)) == 70 - i for i in range(21, 71))
        assert not any(str(i) in table.rows for i in range(1, 21))
        # The cursor stays inside what is left, and moves as before.
        assert table.cursor_row <= 49
        await pilot.press("up")
        assert table.cursor_row <= 48
        # Rows come and go as before after a trim.
        table.insert_newer(_events(71, 75))
        await pilot.pause()
        assert table.row_count == 50
        assert table.highest_id() == 75
        assert table.lowest_id() == 26


def _characters(line: list[Segment]) -> list[tuple[str, Style | None]]:
    return [(char, segment.style) for segment in line for char in segment.text]


def _varied(count: int) -> list[JobStateChanged]:
    """Jobs 1 to `count` in every status, with topics of several widths and some errors."""
    return [
        JobStateChanged(
            job_id=i,
            circle="c",
            topic="t" * (i % 5 + 1),
            status=("new", "active", "done", "error")[i % 4],
            # Brackets are text, never Rich markup.
            error="" if i % 3 else f"failed [bold]{i}[/bold] [/red]",
        )
        for i in range(1, count + 1)
    ]


async def test_its_cells_and_rows_draw_as_datatables_own_render_would() -> None:
    """The table makes its cells' and rows' segments itself: each character in the same style."""
    app = _TableApp()
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        table.insert_newer(_varied(59))
        await pilot.pause()
        # Cut to the column, wide characters, and a tab (left to Rich).
        table.update_cell("59", "error", "an error far longer than its column 漢字漢字漢字漢字")
        table.update_cell("58", "type", "漢字漢字漢字漢字漢字漢字漢字")
        table.update_cell("57", "type", "a\ttab")
        table.move_cursor(row=3)
        await pilot.pause()
        style = table._get_row_style(0, table.rich_style)
        for row in range(12):
            for column_index, column in enumerate(table.ordered_columns):
                for cursor, hover in ((False, False), (True, False), (False, True)):
                    width = column.get_render_width(table)
                    table._cell_render_cache.clear()
                    ours = table._render_cell(row, column_index, style, width, cursor, hover)
                    table._cell_render_cache.clear()
                    theirs = DataTable._render_cell(
                        table, row, column_index, style, width, cursor, hover
                    )
                    assert len(ours) == len(theirs) == 1
                    assert _characters(ours[0]) == _characters(theirs[0]), (row, column.key)
        error = "".join(segment.text for segment in table._render_cell(2, 8, style, 40)[0])
        assert "failed [bold]57[/bold] [/red]" in error
        # Whole rows, drawn in one pass (the tab's cell through Rich in the middle).
        style = table.rich_style
        for hover_row in (5, 40):
            table.hover_coordinate = table.hover_coordinate._replace(row=hover_row)
            for show_hover in (False, True):
                table._show_hover_cursor = show_hover
                at = (table.cursor_coordinate, table.hover_coordinate)
                for row in range(8):
                    key = table.ordered_rows[row].key
                    table._row_cache.clear()
                    _, ours_row = table._render_line_in_row(key, 0, style, *at)
                    table._row_render_cache.clear()
                    table._cell_render_cache.clear()
                    _, theirs_row = DataTable._render_line_in_row(table, key, 0, style, *at)
                    assert len(ours_row) == len(theirs_row)
                    for mine, own in zip(ours_row, theirs_row, strict=True):
                        assert _characters(mine) == _characters(own), (row, hover_row, show_hover)


async def test_its_scrollbar_follows_the_rows_without_a_layout_of_the_screen() -> None:
    app = _TableApp()
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        table.insert_newer(_events(1, 5))
        await pilot.pause()
        assert not table.show_vertical_scrollbar
        # More rows than fit: the scrollbar comes (a layout, as it takes a column).
        table.insert_newer(_events(6, 100))
        await pilot.pause()
        assert table.show_vertical_scrollbar
        assert table.vertical_scrollbar.window_virtual_size == table.virtual_size.height
        layouts = 0
        refresh_layout = app.screen._refresh_layout

        def counted(*args: object, **kwargs: object) -> None:
            nonlocal layouts
            layouts += 1
            refresh_layout(*args, **kwargs)

        app.screen._refresh_layout = counted
        # More rows again: the scrollbar's thumb follows, the screen keeps its layout.
        table.insert_newer(_events(101, 400))
        await pilot.pause()
        assert table.vertical_scrollbar.window_virtual_size == table.virtual_size.height
        assert table.virtual_size.height == 400 + table.header_height
        assert layouts == 0
        # The last row is still reachable.
        table.move_cursor(row=399)
        await pilot.pause()
        assert table.scroll_y == table.max_scroll_y > 0


def _state(job_id: int, status: str, ts: float) -> JobStateChanged:
    return JobStateChanged(job_id=job_id, circle="c", topic="t", status=status, ts=ts)


async def test_an_event_older_than_the_rows_state_leaves_it_as_it_is() -> None:
    app = _TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(JobTable)
        ended = JobView(
            job_id=7, circle="c", topic="t", params="", params_type="heroscript", status="error"
        )
        table.add_jobs([ended], as_of=100.0)
        # Its `new`, made before the page was read, comes with a live insert (it came
        # while the page was read, when the table had no row for it yet).
        table.insert_newer([_state(7, "new", 99.0)])
        await pilot.pause()
        table.apply([_state(7, "active", 99.5)])
        assert str(table.get_cell("7", "status")) == "error"
        # What happened after the read still shows, and an insert's older event after it
        # does not take it back.
        table.apply([_state(7, "done", 101.0)])
        table.insert_newer([_state(7, "error", 100.5)])
        await pilot.pause()
        assert str(table.get_cell("7", "status")) == "done"
        # A row dropped and shown again starts afresh.
        table.remove_jobs({7})
        table.insert_newer([_state(7, "active", 50.0)])
        await pilot.pause()
        assert str(table.get_cell("7", "status")) == "active"
