"""The job table keeps its newest rows when live inserts push it past its bound."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

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
