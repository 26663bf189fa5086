"""Purging ended jobs: they leave the listing, the index and OurDB; other histories stay whole."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from core.api import JobFilter, JobNotFound, JobRefused
from core.config import Config, ConfigError, RetentionConfig, load_config, parse_retention
from core.engine import Engine
from core.events import JobsPurged
from core.jobs.manager import JobManager
from core.jobs.model import JobStatus
from core.jobs.purge import PURGE_BATCH
from core.ourdb import OurDB
from core.ourdb.compact import compact
from core.ourdb.repair import check
from tests.core.jobs.seed import seed_ended
from tests.helpers import ValkeyProcess, async_poll, async_wait_for, idle_config


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
    path = str(engine.config.ourdb_dir)
    # The journal is not counted: until a checkpoint it holds a copy of recent records.
    unpurged = sum(manager.db.db.data_files().values())
    seen: list[int] = []

    with engine.api.subscribe() as events:
        purged = await engine.api.purge(
            JobFilter(status="done"), before=time.time() - 86400, progress=seen.append
        )
        told = [e for e in events.drain() if isinstance(e, JobsPurged)]

    assert purged == count
    # One small event per batch, naming exactly the jobs that went.
    assert [len(e.job_ids) for e in told] == [
        min(PURGE_BATCH, count - n) for n in range(0, count, PURGE_BATCH)
    ]
    assert sorted(i for e in told for i in e.job_ids) == sorted(done)
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
    data_files = sum(manager.db.db.data_files().values())
    await engine.jobs.db.close()
    assert check(path) == []
    # Purge zeroes the records in place; compaction gives their disk back.
    report = await asyncio.to_thread(compact, path)
    print(
        f"data files: {unpurged} bytes, {data_files} purged; on disk {report.bytes_before} "
        f"purged, {report.bytes_after} compacted"
    )
    assert data_files == unpurged
    assert report.bytes_after < report.bytes_before / 10
    assert check(path) == []
    with OurDB(path, readonly=True) as db:
        assert {i: db.get_history(i, 10) for i in kept} == before
        assert list(db) == sorted(kept)


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


async def test_retention_sweep_purges_past_age_and_count(
    engine_config: Config, valkey: ValkeyProcess
) -> None:
    retention = RetentionConfig(done="1h", error="3", interval=0.1)
    config = idle_config(engine_config, valkey, retention=retention)
    async with Engine(config) as engine:
        manager = engine.jobs
        old = await seed_ended(manager, 20, ended_at=time.time() - 7200)
        young = await seed_ended(manager, 5)
        errors = await seed_ended(manager, 10, status=JobStatus.ERROR, ended_at=time.time() - 7200)

        await async_poll(lambda: _count(manager, 27), what="the sweep to purge 27 jobs")

        done = await engine.api.jobs(JobFilter(status="done"), limit=100)
        assert sorted(v.job_id for v in done) == young
        failed = await engine.api.jobs(JobFilter(status="error"), limit=100)
        assert sorted(v.job_id for v in failed) == errors[-3:]
        with pytest.raises(JobNotFound):
            await engine.api.job(old[-1])
        assert engine.history is not None
        assert "27 jobs purged" in engine.history.detail()


async def _count(manager: JobManager, expected: int) -> bool:
    return manager.purged >= expected


def test_retention_config(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('[jobs.retention]\ndone = 100000\nerror = "90d"\ninterval = 60\n')
    retention = load_config(file, env={}).config.jobs.retention
    assert (retention.done, retention.error, retention.interval) == ("100000", "90d", 60.0)
    file.write_text('[jobs.retention]\ndone = "soon"\n')
    with pytest.raises(ConfigError, match=r"jobs\.retention\.done': 'soon' is neither"):
        load_config(file, env={})
    env = {"HEROAGENT_JOBS_RETENTION_ERROR": "12h"}
    assert load_config(file.with_name("none.toml"), env=env).config.jobs.retention.error == "12h"
    assert parse_retention("30d") == ("age", 30 * 86400.0)
    assert parse_retention("100000") == ("keep", 100000.0)
    assert parse_retention(" ") is None
    for bad in ("0", "soon", "-1d", "30 days"):
        with pytest.raises(ValueError, match=r"count|neither"):
            parse_retention(bad)


async def test_purged_jobs_stay_gone_across_a_restart(
    engine_config: Config, valkey: ValkeyProcess, caplog: pytest.LogCaptureFixture
) -> None:
    config = idle_config(engine_config, valkey)
    async with Engine(config) as engine:
        kept = await seed_ended(engine.jobs, 5, status=JobStatus.ERROR)
        done = await seed_ended(engine.jobs, 200)
        assert await engine.api.purge(JobFilter(status="done")) == 200
    caplog.clear()
    caplog.set_level(logging.INFO)
    async with Engine(config) as engine:
        with pytest.raises(JobNotFound):
            await engine.api.job(done[-1])
        assert [v.job_id for v in await engine.api.jobs()] == kept[::-1]
        job = await engine.api.submit("!!fake.return_success\n", topic="after")
        assert job.job_id > done[-1]
    assert "the index lacked" not in caplog.text


async def test_a_job_requeued_while_a_purge_waits_is_not_purged(idle_engine: Engine) -> None:
    manager = idle_engine.jobs
    done = await seed_ended(manager, 10)
    async with manager.ended_lock:
        # Both wait for the lock, the requeue first: it makes the job live again. An
        # asyncio.Lock wakes its waiters (`_waiters`) in the order they came.
        requeue = asyncio.create_task(idle_engine.api.requeue(done[3]))
        await async_wait_for(lambda: manager.ended_lock._waiters, what="the requeue to wait")
        purge = asyncio.create_task(idle_engine.api.purge(JobFilter(status="done")))
        await async_wait_for(
            lambda: len(manager.ended_lock._waiters or ()) == 2, what="the purge to wait"
        )
    assert (await requeue).status == "new"
    assert await purge == 9
    assert (await idle_engine.api.job(done[3])).status == "new"
    assert [v.status for v in await idle_engine.api.history(done[3])] == ["new", "done", "new"]
