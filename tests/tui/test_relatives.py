"""A job's parents and dependants in the job detail (Enter opens one) and in Scheduled."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from core.config import Config
from heroagent_tui.screens.job_detail import JobDetailScreen
from heroagent_tui.screens.scheduled import ScheduledScreen
from tests.helpers import wait_jobs_ended
from tests.tui.conftest import running_app, until

GRAPH = """
!!job.define name:first topic:tree
!!fake.return_success

!!job.define name:second topic:tree after:first
!!fake.return_success
"""


async def test_detail_lists_parents_and_dependants_and_opens_one(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        first, second = await engine.api.submit_graph(GRAPH)
        await wait_jobs_ended(engine, [first.job_id, second.job_id])
        app.open_job(first.job_id)
        detail = await until(
            pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen, what="detail"
        )
        assert isinstance(detail, JobDetailScreen)
        relatives = detail.query_one("#job-relatives", DataTable)
        await until(pilot, lambda: relatives.row_count == 1, what="the dependant listed")
        row = [str(cell) for cell in relatives.get_row(str(second.job_id))]
        assert row[:4] == ["dependant", str(second.job_id), "second", "done"]
        relatives.focus()
        await pilot.press("enter")
        opened = await until(
            pilot,
            lambda: (
                isinstance(app.screen, JobDetailScreen)
                and app.screen.job_id == second.job_id
                and app.screen
            ),
            what="the dependant opened",
        )
        assert isinstance(opened, JobDetailScreen)
        back = opened.query_one("#job-relatives", DataTable)
        await until(pilot, lambda: str(first.job_id) in back.rows, what="its parent listed")
        assert str(back.get_row(str(first.job_id))[0]) == "parent"
        fields = opened.query_one("#job-fields", Static)
        await until(pilot, lambda: "second" in str(fields.render()), what="its name shown")


async def test_a_job_without_relatives_hides_the_table(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        job = await engine.api.submit("!!fake.return_success", topic="alone")
        app.open_job(job.job_id)
        detail = await until(
            pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen, what="detail"
        )
        assert isinstance(detail, JobDetailScreen)
        await until(pilot, lambda: detail.job is not None, what="loaded")
        assert not detail.query_one("#job-relatives", DataTable).display


async def test_scheduled_view_shows_a_dependant_waiting_for_its_parents(
    engine_config: Config,
) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        parent = await engine.api.submit("!!fake.return_success\n", topic="t", delay=3600)
        child = await engine.api.submit(
            "!!fake.return_success\n", topic="t", depends_on=[parent.job_id]
        )
        await pilot.press("8")
        screen = await until(pilot, lambda: isinstance(app.screen, ScheduledScreen) and app.screen)
        assert isinstance(screen, ScheduledScreen)
        table = screen.query_one("#job-list", DataTable)
        await until(pilot, lambda: str(child.job_id) in table.rows, what="the dependant")
        assert str(table.get_cell(str(child.job_id), "why")) == f"parents: {parent.job_id}"
        assert str(table.get_cell(str(child.job_id), "runs")) == "after parents"
