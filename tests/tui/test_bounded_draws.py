"""Screens draw events in bounded batches: a burst costs a few draws, a hidden screen none."""

from __future__ import annotations

import time

from textual.widgets import DataTable

from core.api import JobSpec
from core.config import Config
from core.events import JobProgress, JobStateChanged
from heroagent_tui.app import HeroAgentApp
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.screens.dashboard import DashboardScreen
from heroagent_tui.screens.jobs import APPLY_EVERY, INSERT_EVERY, MAX_PENDING, JobsScreen
from heroagent_tui.screens.queues import QueuesScreen
from heroagent_tui.widgets.job_table import JobTable
from tests.tui.conftest import running_app, until

BURST = 5_000
PER_BATCH = 50


def _batches(events: list[JobStateChanged]) -> list[EngineBatch]:
    """The events as the bridge would hand them over, PER_BATCH at a time."""
    return [
        EngineBatch(jobs={e.job_id: e for e in events[first : first + PER_BATCH]})
        for first in range(0, len(events), PER_BATCH)
    ]


def _publish(app: HeroAgentApp, batches: list[EngineBatch]) -> None:
    """Hand the batches to every screen in one go, as the app's bridge does one by one."""
    # Signals publish only from inside the app's context (the bridge's worker runs there).
    with app._context():
        for batch in batches:
            app.events.publish(batch)


def _state(job_id: int, status: str, error: str = "") -> JobStateChanged:
    return JobStateChanged(
        job_id=job_id, circle="default", topic="burst", status=status, error=error
    )


async def test_a_burst_of_events_is_drawn_in_a_few_batches(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        # Paused: the jobs' own events stay out of the way of the burst's.
        await engine.api.pause_queue("default", "burst")
        jobs = await engine.api.submit_many([JobSpec("!!fake.return_success", topic="burst")] * 20)
        ids = [job.job_id for job in jobs]
        await pilot.press("3")
        screen = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen)
        assert isinstance(screen, JobsScreen)
        table = screen.query_one(JobTable)
        await until(pilot, lambda: all(str(i) in table.rows for i in ids), what="the 20 rows")
        reads: list[list[int]] = []
        lookup = table.lookup
        assert lookup is not None

        async def counted(job_ids: list[int]) -> list[object]:
            reads.append(job_ids)
            return list(await lookup(job_ids))

        table.lookup = counted  # type: ignore[assignment]
        applied, inserted = screen.draws["apply"], screen.draws["insert"]
        started = time.monotonic()
        # 5,000 changes of the shown rows, the last one of each an error, then 5,000 jobs
        # newer than any shown: 200 batches in one go, as a stalled loop would see them.
        statuses = ("active", "done", "new", "active")
        shown = [_state(ids[n % 20], statuses[n % 4]) for n in range(BURST - 20)]
        shown += [_state(job_id, "error", f"burst {job_id}") for job_id in ids]
        top = max(ids)
        newer = [_state(top + 1 + n, "new") for n in range(BURST)]
        _publish(app, _batches(shown) + _batches(newer))
        await pilot.pause()
        # Newer jobs past MAX_PENDING are only counted, never kept (the first batch's
        # went in at once).
        assert len(screen._newer) <= MAX_PENDING
        assert screen._unseen >= BURST - MAX_PENDING - PER_BATCH
        await until(
            pilot,
            lambda: all(f"burst {i}" in str(table.get_cell(str(i), "error")) for i in ids),
            what="the last state of every row",
        )
        await until(pilot, lambda: not screen._newer and not screen._changed, what="all drawn")
        # Drawn at the rate bound, whatever the number of batches: one draw at once, then
        # at most one per period that passed (not one per batch: 200 came).
        took = time.monotonic() - started
        assert screen.draws["apply"] - applied <= 2 + took / APPLY_EVERY
        assert screen.draws["insert"] - inserted <= 2 + took / INSERT_EVERY
        # An insert's rows go in once its read is back (the table's own worker).
        await until(pilot, lambda: str(top + BURST) in table.rows, what="the newest row")
        # The newer jobs' rows go in after one read per insert, not one per job.
        assert len(reads) == screen.draws["insert"] - inserted


async def test_a_hidden_screen_draws_nothing_until_shown(engine_config: Config) -> None:
    async with running_app(engine_config) as (_engine, app, pilot):
        await pilot.press("2")
        queues = await until(pilot, lambda: isinstance(app.screen, QueuesScreen) and app.screen)
        await pilot.press("3")
        jobs = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen)
        await pilot.press("1")
        dashboard = await until(
            pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen
        )
        assert isinstance(queues, QueuesScreen)
        assert isinstance(jobs, JobsScreen)
        assert isinstance(dashboard, DashboardScreen)
        await pilot.pause()
        hidden_draws = (sum(queues.draws.values()), sum(jobs.draws.values()))
        rows_drawn = queues.draws["rows"]
        batches = _batches([_state(1_000_000 + n, "new") for n in range(BURST)])
        for batch in batches:
            batch.queue_deltas[("default", "hidden", "new")] += PER_BATCH
        _publish(app, batches)
        await pilot.pause()
        # The shown screen drew; the hidden ones kept bounded state and drew nothing.
        assert dashboard.draws["flow"] >= 1
        assert (sum(queues.draws.values()), sum(jobs.draws.values())) == hidden_draws
        assert len(jobs._newer) <= MAX_PENDING
        assert queues._counts["default/hidden"]["new"] == BURST
        # Shown again, it draws what it kept, once for the whole burst.
        await pilot.press("2")
        table = queues.query_one("#queues", DataTable)
        await until(pilot, lambda: "default/hidden" in table.rows, what="the hidden queue's row")
        assert table.get_cell("default/hidden", "new") == str(BURST)
        assert queues.draws["rows"] == rows_drawn + 1


async def test_progress_that_comes_before_its_jobs_row_shows_once_the_row_is_in(
    engine_config: Config,
) -> None:
    async with running_app(engine_config) as (_, app, pilot):
        await pilot.press("3")
        screen = await until(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen)
        assert isinstance(screen, JobsScreen)
        table = screen.query_one(JobTable)
        # A job that reports once as it starts: its state and its only progress come in
        # one batch, while its row is still to be read and inserted.
        job_id = 1_000_000
        progress = JobProgress(job_id=job_id, fraction=0.5, message="halfway")
        _publish(
            app, [EngineBatch(jobs={job_id: _state(job_id, "active")}, progress={job_id: progress})]
        )
        key = str(job_id)

        def bar() -> str:
            return str(table.get_cell(key, "progress")) if key in table.rows else ""

        await until(pilot, lambda: bar().endswith(" 50%"), what=f"the bar, not {bar()!r}")
        assert not screen._early
        assert not screen._inserting
