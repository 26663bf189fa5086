"""Pilot tests of the Scheduled and Dead views and of retries in Jobs and the job detail."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from textual.widgets import DataTable, Static

from core.api import EngineAPI
from core.config import Config
from heroagent_tui.format import DisplayFormat
from heroagent_tui.screens.dead import DeadScreen
from heroagent_tui.screens.jobs import JobsScreen
from heroagent_tui.screens.scheduled import ScheduledScreen
from heroagent_tui.widgets.job_table import JobTable
from tests.helpers import async_poll
from tests.tui.conftest import open_detail, running_app, until

FAILS = "!!fake.return_error message:'mailbox full'\n"


def cell(table: DataTable[object], job_id: int, column: str) -> str:
    return str(table.get_cell(str(job_id), column)) if str(job_id) in table.rows else ""


async def test_scheduled_counts_down_and_opens_the_job(engine_config: Config) -> None:
    now = [time.time()]
    fmt = DisplayFormat(clock=lambda: now[0])
    async with running_app(engine_config, fmt=fmt) as (engine, app, pilot):
        api = engine.api
        delayed = await api.submit("!!fake.return_success message:later\n", topic="t", delay=3600)
        await pilot.press("8")
        screen = await until(pilot, lambda: isinstance(app.screen, ScheduledScreen) and app.screen)
        assert isinstance(screen, ScheduledScreen)
        table = screen.query_one("#job-list", DataTable)
        await until(pilot, lambda: str(delayed.job_id) in table.rows, what="the delayed job")
        assert cell(table, delayed.job_id, "queue") == "default/t"
        assert cell(table, delayed.job_id, "attempt") == "1/1"
        assert cell(table, delayed.job_id, "why") == "delay"
        now[0] = delayed.run_at - 65
        await until(
            pilot,
            lambda: cell(table, delayed.job_id, "runs") == "in 1m 05s",
            what=f"a countdown, not {cell(table, delayed.job_id, 'runs')}",
        )
        now[0] += 60
        await until(pilot, lambda: cell(table, delayed.job_id, "runs") == "in 5s")

        # A failed attempt with retries left comes in live, by its event.
        retried = await api.submit(FAILS, topic="t", retries=2, backoff_base=3600, backoff_max=7200)
        await until(pilot, lambda: str(retried.job_id) in table.rows, what="the retried job")
        assert cell(table, retried.job_id, "attempt") == "2/3"
        assert cell(table, retried.job_id, "why") == "retry: failed"
        assert "mailbox full" in cell(table, retried.job_id, "last error")
        assert table.get_row_index(str(delayed.job_id)) == 0  # soonest first

        table.move_cursor(row=table.get_row_index(str(retried.job_id)))
        detail = await open_detail(pilot, retried.job_id)
        fields = detail.query_one("#job-fields", Static)
        await until(pilot, lambda: "next run" in str(fields.render()), what="the next run")
        assert "1/3" in str(fields.render())
        outcome = str(detail.query_one("#job-outcome", Static).render())
        assert "last attempt's error (failed)" in outcome
        timeline = detail.query_one("#job-timeline", DataTable)
        await until(pilot, lambda: timeline.row_count >= 3, what="new, active, scheduled")
        errors = [str(timeline.get_row_at(i)[-1]) for i in range(timeline.row_count)]
        assert errors[2] == "failed: line 1: fake.return_error: mailbox full"

        # Cancelled from the list, it leaves it (its event says error).
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, what="back in Scheduled")
        table.move_cursor(row=table.get_row_index(str(delayed.job_id)))
        await pilot.press("C")
        await until(pilot, lambda: app.screen is not screen, what="the question")
        await pilot.press("y")
        await until(pilot, lambda: str(delayed.job_id) not in table.rows, what="it leaves")
        assert (await api.job(delayed.job_id)).error_kind == "cancelled"

        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="Jobs")
        jobs_table = app.screen.query_one(JobTable)
        await until(pilot, lambda: cell(jobs_table, retried.job_id, "attempt") == "1/3")
        assert cell(jobs_table, retried.job_id, "scheduled").startswith("next ")


def _flaky(config: Config) -> Config:
    return replace(config, actors=replace(config.actors, modules=["tests.core.jobs.flaky_actors"]))


async def test_dead_letters_requeued_one_and_all(engine_config: Config, short_tmp: Path) -> None:
    async with running_app(_flaky(engine_config)) as (engine, app, pilot):
        api = engine.api
        await pilot.press("9")
        screen = await until(pilot, lambda: isinstance(app.screen, DeadScreen) and app.screen)
        assert isinstance(screen, DeadScreen)
        await until(pilot, lambda: screen.loaded, what="the first read")
        table = screen.query_one("#job-list", DataTable)
        # Each fails its first attempt for good (no retries), and succeeds when run again.
        params = f"!!flaky.fail_first times:1 folder:'{short_tmp}'\n"
        ids = [(await api.submit(params, topic="flaky")).job_id for _ in range(3)]
        await until(pilot, lambda: table.row_count == 3, what="three dead letters, live")
        first = ids[0]
        assert cell(table, first, "reason") == "failed"
        assert "attempt 1 fails on purpose" in cell(table, first, "error")
        assert cell(table, first, "attempts") == "1/1"
        assert cell(table, first, "queue") == "default/flaky"
        status = screen.query_one("#job-list-status", Static)
        assert "3 dead letters" in str(status.render())

        table.move_cursor(row=table.get_row_index(str(first)))
        detail = await open_detail(pilot, first)
        outcome = detail.query_one("#job-outcome", Static)
        await until(pilot, lambda: "error (failed)" in str(outcome.render()), what="its error")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, what="back in Dead")
        await pilot.press("R")
        await until(pilot, lambda: app.screen is not screen, what="the question")
        await pilot.press("y")
        await async_poll(partial(_is_done, api, first), 10, "the requeued job done")
        await until(pilot, lambda: str(first) not in table.rows, what="it left Dead")
        assert table.row_count == 2

        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.screen is not screen, what="the bulk question")
        question = str(app.screen.query_one("#confirm-question", Static).render())
        assert question == "Requeue all 2 dead letters?"
        await pilot.press("y")
        for job_id in ids[1:]:
            await async_poll(partial(_is_done, api, job_id), 10, f"job {job_id} done")
        await until(pilot, lambda: table.row_count == 0, what="Dead emptied")
        history = await api.history(first)
        assert [v.status for v in history][-2:] == ["active", "done"]


async def _is_done(api: EngineAPI, job_id: int) -> bool:
    return (await api.job(job_id)).status == "done"
