"""Job progress on a real engine: rate-bounded events, the live hash, and the history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from itertools import pairwise

import pytest

from core.api import JobFilter, JobView
from core.config import Config
from core.engine import Engine
from core.events import JobProgress
from core.watchdog.pool import PROGRESS_SECONDS
from heroagent_tui.commands.jobs import _print_jobs
from heroagent_tui.commands.submit import print_job
from tests.helpers import async_poll, engine_with_actors, wait_job_ended

# Event stamps are wall-clock and the spacing is kept on the loop's clock: allow for
# the two drifting by a little.
CLOCK_SLACK = 0.01


@pytest.fixture
async def progress_engine(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine with the progress test actors."""
    async with engine_with_actors(engine_config, "tests.core.jobs.progress_actors") as engine:
        yield engine


async def test_progress_events_are_rate_bounded_and_end_with_the_last_value(
    progress_engine: Engine,
) -> None:
    engine = progress_engine
    with engine.bus.subscribe(maxsize=100_000) as events:
        # A thousand reports over a second or more, from a worker thread.
        job = await engine.api.submit("!!progress.flood count:1000 pause:0.001\n", topic="t")
        ended = await wait_job_ended(engine, job.job_id, 30)
        seen = [e for e in events.drain() if isinstance(e, JobProgress) and e.job_id == job.job_id]
    assert ended.status == "done", ended.error
    assert len(seen) >= 3
    # At most one report per PROGRESS_SECONDS (about ten a second), whatever the action
    # does; only the one held back at the end goes out early, so the job ends on time.
    gaps = [later.ts - earlier.ts for earlier, later in pairwise(seen)]
    assert min(gaps[:-1]) >= PROGRESS_SECONDS - CLOCK_SLACK, gaps
    fractions = [e.fraction for e in seen]
    assert fractions == sorted(fractions)
    assert (seen[-1].fraction, seen[-1].message) == (1.0, "done")
    # The final version in the history keeps the last value.
    assert (ended.progress, ended.progress_message) == (1.0, "done")
    history = await engine.api.history(job.job_id)
    assert history[-1].status == "done"
    assert (history[-1].progress, history[-1].progress_message) == (1.0, "done")
    # The version of the attempt's start has none yet.
    assert history[0].progress is None


async def test_a_running_job_shows_its_progress(progress_engine: Engine) -> None:
    engine = progress_engine
    job = await engine.api.submit("!!progress.halfway\n", topic="t")

    async def halfway() -> bool:
        view = await engine.api.job(job.job_id)
        return view.status == "active" and view.progress == 0.5

    await async_poll(halfway, 10, "the live job to show its progress")
    live = await engine.api.job(job.job_id)
    assert live.progress_message == "halfway"
    assert (await engine.api.jobs_by_id([job.job_id]))[0].progress == 0.5
    # The history page shows live jobs as they are now, progress included.
    listed = await engine.api.jobs(JobFilter(), limit=10)
    assert [(v.job_id, v.progress) for v in listed] == [(job.job_id, 0.5)]
    await engine.api.cancel(job.job_id)
    cancelled = await wait_job_ended(engine, job.job_id)
    # Cancelled midway, it keeps how far it got; run again, it starts without any.
    assert (cancelled.status, cancelled.progress) == ("error", 0.5)
    await engine.api.requeue(job.job_id)
    assert (await engine.api.history(job.job_id))[-1].progress is None
    await engine.api.cancel(job.job_id)


async def test_a_child_process_reports_progress(progress_engine: Engine) -> None:
    engine = progress_engine
    job = await engine.api.submit("!!progress.child steps:3\n", topic="t")
    ended = await wait_job_ended(engine, job.job_id, 30)
    assert ended.status == "done", ended.error
    assert (ended.progress, ended.progress_message) == (1.0, "child step 3")


async def test_a_nan_fraction_fails_the_action_with_a_clear_error(
    progress_engine: Engine,
) -> None:
    engine = progress_engine
    job = await engine.api.submit("!!progress.bad\n", topic="t")
    ended = await wait_job_ended(engine, job.job_id)
    assert ended.status == "error"
    assert "progress: fraction must be a number from 0 to 1, got NaN" in ended.error
    assert ended.progress is None


async def test_the_fake_actor_reports_its_steps(engine: Engine) -> None:
    with engine.bus.subscribe() as events:
        job = await engine.api.submit("!!fake.progress steps:4\n", topic="t")
        ended = await wait_job_ended(engine, job.job_id)
        seen = [e for e in events.drain() if isinstance(e, JobProgress) and e.job_id == job.job_id]
    assert ended.status == "done", ended.error
    assert (ended.progress, ended.progress_message) == (1.0, "step 4 of 4")
    assert (seen[-1].fraction, seen[-1].message) == (1.0, "step 4 of 4")


async def test_a_rhai_script_reports_progress(engine: Engine) -> None:
    script = 'progress(0.25, "a quarter"); progress(2); progress(1.0, "all"); 42'
    job = await engine.api.submit(script, topic="t", params_type="rhaiscript")
    ended = await wait_job_ended(engine, job.job_id)
    assert ended.status == "done", ended.error
    assert (ended.progress, ended.progress_message) == (1.0, "all")
    bad = await engine.api.submit('progress("far")', topic="t", params_type="rhaiscript")
    failed = await wait_job_ended(engine, bad.job_id)
    assert failed.status == "error"
    assert "progress: fraction must be a number" in failed.error


def test_the_cli_shows_progress(capsys: pytest.CaptureFixture[str]) -> None:
    running = JobView(
        job_id=7,
        circle="c",
        topic="t",
        params="",
        params_type="heroscript",
        status="active",
        progress=0.456,
        progress_message="step 3",
    )
    print_job(running)
    _print_jobs([running, replace(running, job_id=8, status="done", progress=1.0)], "jobs")
    out = capsys.readouterr().out
    assert "progress: 46% step 3" in out
    assert "active 46%" in out
    # Only running jobs show it in the list: an ended one's last value is in `job ID`.
    assert "done 100%" not in out
