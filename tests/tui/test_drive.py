"""Pilot tests of driving schedules and purges from the TUI, against a real engine."""

from __future__ import annotations

from dataclasses import replace

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static

from core.api import JobFilter
from core.config import Config, ScheduleConfig
from heroagent_tui.app import HeroAgentApp
from heroagent_tui.screens.confirm import ConfirmScreen
from heroagent_tui.screens.dead import DeadScreen
from heroagent_tui.screens.jobs import JobsScreen
from heroagent_tui.screens.queues import QueuesScreen
from heroagent_tui.screens.schedule_form import ScheduleForm
from heroagent_tui.widgets.job_table import JobTable
from tests.helpers import wait_jobs_ended
from tests.tui.conftest import running_app, until

FAILS = "!!fake.return_error message:'mailbox full'\n"
WORKS = "!!fake.return_success message:hi\n"


def _notes(app: HeroAgentApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def _state(table: DataTable[object], name: str) -> str:
    return str(table.get_cell(name, "state")) if name in table.rows else "?"


def _question(app: HeroAgentApp) -> str:
    return str(app.screen.query_one("#confirm-question", Static).render())


async def _purge_answered_yes(
    app: HeroAgentApp, pilot: Pilot[int], question: str, table: DataTable[object]
) -> None:
    """Press `P`, check the question, say yes, and wait for the list to empty."""
    await pilot.press("P")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
    assert _question(app) == question
    await pilot.press("y")
    await until(pilot, lambda: table.row_count == 0, what="the rows gone")


async def _schedules(app: HeroAgentApp, pilot: Pilot[int], rows: int) -> DataTable[object]:
    """Open Queues and wait for `rows` schedule rows; the schedules table, focused."""
    await pilot.press("2")
    screen = await until(pilot, lambda: isinstance(app.screen, QueuesScreen) and app.screen)
    assert isinstance(screen, QueuesScreen)
    table = screen.query_one("#schedules", DataTable)
    await until(pilot, lambda: len(table.rows) == rows, what=f"{rows} schedule rows")
    await pilot.press("s")
    await until(pilot, lambda: table.has_focus, what="the schedules focused")
    return table


async def test_pause_then_resume_a_schedule(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        await engine.api.add_schedule("hourly", "!!core.echo\n", topic="t", every="1h")
        table = await _schedules(app, pilot, 1)
        await pilot.press("p")
        await until(pilot, lambda: _state(table, "hourly") == "paused", what="shown paused")
        assert [s.paused for s in engine.api.schedules()] == [True]
        await pilot.press("p")
        await until(pilot, lambda: _state(table, "hourly") == "", what="shown running")
        assert [s.paused for s in engine.api.schedules()] == [False]


async def test_add_a_schedule_through_the_form_and_it_fires(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        await pilot.press("2")
        await until(pilot, lambda: isinstance(app.screen, QueuesScreen))
        queues = app.screen
        await pilot.press("a")
        form = await until(pilot, lambda: isinstance(app.screen, ScheduleForm) and app.screen)
        assert isinstance(form, ScheduleForm)
        await pilot.press(*"ticker")
        form.query_one("#schedule-when", Input).value = "often"
        form.query_one("#schedule-topic", Input).value = "ticks"
        await pilot.press("ctrl+s")
        errors = form.query_one("#schedule-errors", Static)
        # Refused by the engine: the reason shows and the form stays open for a fix.
        await until(pilot, lambda: "often" in str(errors.render()), what="the refusal")
        assert app.screen is form
        assert any("often" in note for note in _notes(app))
        assert engine.api.schedules() == []

        form.query_one("#schedule-when", Input).value = "300ms"
        assert form.query_one("#schedule-kind", Select).value == "every"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is queues, what="the form closed")
        table = queues.query_one("#schedules", DataTable)
        await until(pilot, lambda: "ticker" in table.rows, what="the new schedule row")
        assert str(table.get_cell("ticker", "queue")) == "default/ticks"
        fired = await until(
            pilot,
            lambda: next((s for s in engine.api.schedules() if s.last_job), None),
            what="the schedule to fire",
        )
        assert fired is not None
        assert (await engine.api.job(fired.last_job)).topic == "ticks"


async def test_remove_a_schedule_and_a_config_one_is_refused(engine_config: Config) -> None:
    config = replace(
        engine_config,
        schedules={"nightly": ScheduleConfig(params="!!core.echo\n", topic="b", cron="0 2 * * *")},
    )
    async with running_app(config) as (engine, app, pilot):
        await engine.api.add_schedule("added", "!!core.echo\n", topic="t", every="1h")
        table = await _schedules(app, pilot, 2)
        screen = app.screen
        table.move_cursor(row=table.get_row_index("added"))
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert _question(app) == "Remove schedule added?"
        await pilot.press("y")
        await until(pilot, lambda: "added" not in table.rows, what="the row gone")
        assert [s.name for s in engine.api.schedules()] == ["nightly"]

        table.move_cursor(row=table.get_row_index("nightly"))
        await pilot.press("D", "y")
        await until(
            pilot,
            lambda: any("defined in the config" in note for note in _notes(app)),
            what="the engine's refusal as a notification",
        )
        assert app.screen is screen
        assert "nightly" in table.rows
        assert [s.name for s in engine.api.schedules()] == ["nightly"]


async def test_purge_dead_letters_from_the_dead_view(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        api = engine.api
        dead = [(await api.submit(FAILS, topic="mail")).job_id for _ in range(3)]
        kept = (await api.submit(WORKS)).job_id
        await wait_jobs_ended(engine, [*dead, kept])
        await pilot.press("9")
        screen = await until(pilot, lambda: isinstance(app.screen, DeadScreen) and app.screen)
        assert isinstance(screen, DeadScreen)
        table = screen.query_one("#job-list", DataTable)
        await until(pilot, lambda: table.row_count == 3, what="three dead letters")
        await _purge_answered_yes(app, pilot, "Purge 3 dead letters?", table)
        assert await api.dead() == []
        assert api.health().purged == 3
        assert (await api.job(kept)).status == "done"
        await until(pilot, lambda: "3 dead letters purged" in _notes(app), what="the outcome")


async def test_purge_the_done_jobs_a_filter_shows(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        api = engine.api
        done = [(await api.submit(WORKS)).job_id for _ in range(3)]
        failed = (await api.submit(FAILS)).job_id
        await wait_jobs_ended(engine, [*done, failed])
        await pilot.press("3")
        screen = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen)
        assert isinstance(screen, JobsScreen)
        table = screen.query_one(JobTable)
        await until(pilot, lambda: table.row_count == 4, what="four jobs")
        # Unfiltered, the list may hold live jobs: refused, and nothing is asked.
        await pilot.press("P")
        await until(pilot, lambda: any("status:done" in n for n in _notes(app)), what="refusal")
        assert app.screen is screen

        screen.set_filter("status:done")
        await until(pilot, lambda: table.row_count == 3, what="the three done jobs")
        await _purge_answered_yes(app, pilot, "Purge 3 done jobs?", table)
        assert await api.jobs(JobFilter(status="done")) == []
        assert (await api.job(failed)).status == "error"


async def test_a_purge_elsewhere_empties_an_open_jobs_list(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        api = engine.api
        await pilot.press("3")
        screen = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen)
        assert isinstance(screen, JobsScreen)
        table = screen.query_one(JobTable)
        done = [(await api.submit(WORKS)).job_id for _ in range(3)]
        failed = (await api.submit(FAILS)).job_id
        await wait_jobs_ended(engine, [*done, failed])
        await until(pilot, lambda: table.row_count == 4, what="four live rows")
        # Through the API, as the HTTP UI's purge does: only the engine's event tells the list.
        assert await api.purge(JobFilter(status="done")) == 3
        await until(pilot, lambda: list(table.rows) == [str(failed)], what="purged rows gone")
