"""An idle engine's path from submit to result: nothing on it waits for company or a timer."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from core.api import EngineUnavailable, JobNotFound
from core.engine import Engine
from core.jobs.persister import Persister
from core.jobs.queue import Fetched
from core.watchdog import pool as pool_module
from tests.helpers import running_watchdog, wait_job_ended

JOBS = 5


def _persister(engine: Engine) -> Persister:
    assert engine.history is not None
    persister = engine.history._persister
    assert persister is not None
    return persister


async def test_an_idle_engine_persists_each_version_without_lingering(engine: Engine) -> None:
    persister = _persister(engine)
    before = persister.lingers
    for n in range(JOBS):
        job = await engine.api.submit(f"!!core.echo message:m{n}\n", topic="idle")
        done = await engine.api.wait(job.job_id)
        assert done.status == "done"
        assert f"m{n}" in done.result
        history = await engine.api.history(job.job_id)
        assert [v.status for v in history] == ["new", "active", "done"]
    # One job at a time: a read that found a job's versions never found more
    # queued behind it, so no read was put off to let a batch grow.
    assert persister.lingers == before


async def _stored_as(engine: Engine, job_id: int, status: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while (await engine.jobs.stored_job(job_id)).status != status:
        assert time.monotonic() < deadline, f"job {job_id} not stored as {status}"
        await asyncio.sleep(0.01)


async def test_a_short_jobs_active_version_rides_on_its_end_in_one_write(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However slow the machine, the job ends before its `active` would be reported alone.
    monkeypatch.setattr(pool_module, "REPORT_ACTIVE_AFTER_SECONDS", 60.0)
    stats = engine.jobs.db.db.stats
    commits = stats.commits
    job = await engine.api.submit("!!fake.sleep seconds:0.2\n", topic="idle")
    done = await engine.api.wait(job.job_id)
    assert done.status == "done"
    new, active, end = await engine.jobs.job_history(job.job_id)
    assert [new.status, active.status, end.status] == ["new", "active", "done"]
    # The `active` is the run as it was before its end: started, by whom, nothing ended.
    assert active.time_start == end.time_start > 0
    assert active.worker == end.worker != ""
    assert (active.time_end, active.result, active.error) == (0.0, "", "")
    assert active.revision == end.revision - 1 > new.revision
    # The submit's write, then one for the `active` and the end together.
    assert stats.commits - commits == 2


async def test_wait_answers_with_the_durable_end_and_at_once_when_ended(engine: Engine) -> None:
    job = await engine.api.submit("!!core.echo message:once\n", topic="idle")
    first, second = await asyncio.gather(engine.api.wait(job.job_id), engine.api.wait(job.job_id))
    assert first.status == second.status == "done"
    assert first.result == second.result
    # The end it was handed is the one the history holds.
    stored = await wait_job_ended(engine, job.job_id)
    assert (stored.status, stored.result) == (first.status, first.result)
    # Ended already: answered from what is stored, without waiting.
    again = await engine.api.wait(job.job_id)
    assert (again.status, again.result) == (first.status, first.result)
    assert engine.jobs._end_waiters == {}


async def test_wait_refuses_an_unknown_job(engine: Engine) -> None:
    with pytest.raises(JobNotFound, match="999999"):
        await engine.api.wait(999_999)
    assert engine.jobs._end_waiters == {}


async def test_a_cancelled_wait_leaves_no_waiter(engine: Engine) -> None:
    await engine.api.pause_queue("default", "held")
    job = await engine.api.submit("!!core.echo message:held\n", topic="held")
    waiting = asyncio.create_task(engine.api.wait(job.job_id))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert engine.jobs._end_waiters == {}


async def test_a_wait_ends_when_the_jobs_service_stops(engine: Engine) -> None:
    await engine.api.pause_queue("default", "held")
    job = await engine.api.submit("!!core.echo message:held\n", topic="held")
    waiting = asyncio.create_task(engine.api.wait(job.job_id))
    await asyncio.sleep(0)  # its first step registers it, before any read
    assert engine.jobs._end_waiters
    await engine.api.stop_service("jobs")
    with pytest.raises(EngineUnavailable, match="stopped while waiting"):
        await waiting


async def test_a_fetch_that_found_fewer_jobs_than_slots_is_followed_by_a_waiting_one(
    idle_engine: Engine,
) -> None:
    async with running_watchdog(idle_engine, 4) as dog:
        queue = dog.queue
        fetch = queue.fetch
        calls: list[tuple[int, int, float]] = []

        async def recorded_fetch(worker: str, count: int, wait: float = 0.0) -> Fetched:
            fetched = await fetch(worker, count, wait)
            calls.append((len(fetched.leases), count, wait))
            return fetched

        # A pass-through recorder on the real queue: the dispatcher looks it up each time.
        queue.fetch = recorded_fetch  # type: ignore[method-assign]
        for n in range(3):
            job = await idle_engine.api.submit(f"!!core.echo message:w{n}\n", topic="idle")
            assert (await idle_engine.api.wait(job.job_id)).status == "done"
    # Each job after the first (which the dog's first fetch may find) came in a fetch
    # that waited for the doorbell: one round trip from the ring to the jobs.
    taken = [call for call in calls if call[0]]
    assert len(taken) == 3
    assert all(wait > 0 for _, _, wait in taken[1:]), calls
    # The FETCH that found fewer than it asked cleared the doorbell: the next one waits.
    for call, after in itertools.pairwise(calls):
        if call[0] < call[1]:
            assert after[2] > 0, calls
