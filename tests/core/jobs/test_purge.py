"""Purging ended jobs: they leave the listing, the index and OurDB; other histories stay whole."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.api import JobFilter, JobNotFound, JobRefused
from core.engine import Engine
from core.jobs.model import JobStatus
from core.ourdb.repair import check
from tests.core.jobs.seed import seed_ended


async def _histories(engine: Engine, job_ids: list[int]) -> dict[int, list[bytes]]:
    db = engine.jobs.db
    return {i: await db.get_history(i, 10) for i in job_ids}


async def _purge_done(engine: Engine, count: int) -> None:
    manager = engine.jobs
    old = time.time() - 7 * 86400
    done = await seed_ended(manager, count, ended_at=old)
    errors = await seed_ended(manager, 50, status=JobStatus.ERROR, ended_at=old)
    recent = await seed_ended(manager, 50)
    live = await engine.api.submit("!!fake.return_success\n", topic="held")
    kept = [*errors, *recent, live.job_id]
    before = await _histories(engine, kept)
    seen: list[int] = []

    purged = await engine.api.purge(
        JobFilter(status="done"), before=time.time() - 86400, progress=seen.append
    )

    assert purged == count
    assert seen[-1] == count
    assert seen == sorted(seen)
    assert manager.purged == count
    assert engine.api.health().purged == count
    for job_id in (done[0], done[len(done) // 2], done[-1]):
        with pytest.raises(JobNotFound):
            await engine.api.job(job_id)
    listed = await engine.api.jobs(JobFilter(status="done"), limit=1_000)
    assert {v.job_id for v in listed} == set(recent)
    index = manager.index
    older = await asyncio.to_thread(index.query, JobFilter(), limit=1, before_id=done[-1] + 1)
    assert not older
    assert set(await engine.jobs.db.ids()).isdisjoint(done)
    assert await _histories(engine, kept) == before
    assert (await engine.api.history(errors[0]))[-1].status == "error"
    assert (await engine.api.job(live.job_id)).status == "new"
    # A purged id counts as known: a restart does not look for it again.
    assert await asyncio.to_thread(index.missing_ids, max(kept)) == []
    await engine.jobs.db.close()
    assert check(str(engine.config.ourdb_dir)) == []


async def test_purge_done_jobs(idle_engine: Engine) -> None:
    await _purge_done(idle_engine, 3_000)


@pytest.mark.slow
async def test_purge_100k_done_jobs(idle_engine: Engine) -> None:
    await _purge_done(idle_engine, 100_000)


async def test_purge_refuses_jobs_not_ended(idle_engine: Engine) -> None:
    job = await idle_engine.api.submit("!!fake.return_success\n", topic="held")
    for status in ("new", "active", "scheduled"):
        with pytest.raises(JobRefused, match="not ended"):
            await idle_engine.api.purge(JobFilter(status=status))
    assert await idle_engine.api.purge(JobFilter()) == 0
    assert (await idle_engine.api.job(job.job_id)).status == "new"


async def test_purge_keeps_the_newest_and_dead_letters_alone(idle_engine: Engine) -> None:
    manager = idle_engine.jobs
    done = await seed_ended(manager, 30)
    dead = await seed_ended(manager, 20, status=JobStatus.ERROR)
    assert await idle_engine.api.purge(JobFilter(status="done"), keep=10) == 20
    listed = await idle_engine.api.jobs(JobFilter(status="done"), limit=100)
    assert [v.job_id for v in listed] == done[-10:][::-1]
    assert await idle_engine.api.purge(JobFilter(dead=True), limit=5) == 5
    assert len(await idle_engine.api.dead(limit=100)) == 15
    assert await idle_engine.api.purge(JobFilter(dead=True)) == 15
    assert await idle_engine.api.dead() == []
    with pytest.raises(JobNotFound):
        await idle_engine.api.history(dead[0])
