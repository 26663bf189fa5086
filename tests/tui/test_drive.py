"""Pilot tests of driving schedules and purges from the TUI, against a real engine."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from core.api import JobFilter
from core.config import Config
from heroagent_tui.app import HeroAgentApp
from heroagent_tui.screens.confirm import ConfirmScreen
from heroagent_tui.screens.dead import DeadScreen
from heroagent_tui.screens.jobs import JobsScreen
from heroagent_tui.widgets.job_table import JobTable
from tests.helpers import wait_jobs_ended
from tests.tui.conftest import running_app, until

FAILS = "!!fake.return_error message:'mailbox full'\n"
WORKS = "!!fake.return_success message:hi\n"


def _notes(app: HeroAgentApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


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
