"""Delayed jobs: run once, on time, with rival promoters, workers killed, and Redis flushed."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis

from core.api import JobSpec
from core.engine import Engine
from core.jobs import JobStatus, keys
from core.jobs.promoter import start_promoter, stop_promoter
from tests.core.jobs.test_faults import spawn_worker
from tests.helpers import (
    ValkeyProcess,
    async_poll,
    running_watchdog,
    short_and_soak,
    wait_jobs_ended,
)

# How late a due job may start: the promoter wakes at its time, a worker at the doorbell.
LATE_LIMIT = 1.0
# A worker stamps time_start just before it sends FETCH, so a fetch already on its way
# when the promoter queued the job carries a stamp up to one round trip older.
STAMP_SLACK = 0.02


async def delayed_under_faults(
    engine: Engine, valkey: ValkeyProcess, data: Path, count: int, spread: float
) -> None:
    # A second promoter on its own connection races the engine's for the lock.
    rival, rival_task = await start_promoter(aioredis.Redis.from_url(valkey.url))
    workers = [spawn_worker(valkey.url, data / str(n)) for n in range(3)]
    try:
        # On time means once workers run: wait until all three have registered.
        async def registered() -> bool:
            return int(await rival.redis.scard(keys.WORKERS)) == 3

        await async_poll(registered, 30, "three workers registered")
        specs = [
            JobSpec("!!fake.sleep seconds:0.02\n", topic="later", delay=0.5 + spread * i / count)
            for i in range(count)
        ]
        jobs = await engine.jobs.create_jobs(specs)
        assert all(job.status is JobStatus.SCHEDULED for job in jobs)
        ids = [job.job_id for job in jobs]
        # Kill one worker while jobs are due and running: its jobs are handed back.
        await async_poll(
            lambda: _done_count(engine, ids, count // 3), spread * 3, "a third of the jobs done"
        )
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(5)
        await wait_jobs_ended(engine, ids, spread + 60)
    finally:
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
        for worker in workers[1:]:
            worker.wait(10)
        await stop_promoter(rival, rival_task)
        await rival.redis.aclose()
    for job in jobs:
        history = await engine.jobs.job_history(job.job_id)
        done = [v for v in history if v.status is JobStatus.DONE]
        assert len(done) == 1, f"job {job.job_id} done {len(done)} times"
        assert [v.status for v in history if v.status.ended] == [JobStatus.DONE]
        actives = [i for i, v in enumerate(history) if v.status is JobStatus.ACTIVE]
        for before, after in itertools.pairwise(actives):
            # A second run only after the worker of the first was lost (handed back: new).
            between = [v.status for v in history[before + 1 : after]]
            assert JobStatus.NEW in between, f"job {job.job_id} ran twice: {history}"
        first = history[actives[0]]
        early = job.run_at - first.time_start
        assert early <= STAMP_SLACK, f"job {job.job_id} ran {early:.4f} s early"
        assert first.time_start - job.run_at <= LATE_LIMIT, (
            f"job {job.job_id} started {first.time_start - job.run_at:.3f} s late"
        )


async def _done_count(engine: Engine, ids: list[int], at_least: int) -> bool:
    stored = await asyncio.to_thread(engine.jobs.read_many, ids)
    return sum(job.status is JobStatus.DONE for job in stored.values()) >= at_least


@short_and_soak(("count", "spread"), (200, 2.0), (1000, 5.0))
async def test_delayed_jobs_two_promoters_three_workers_one_killed(
    shared: tuple[Engine, ValkeyProcess], short_tmp: Path, count: int, spread: float
) -> None:
    engine, valkey = shared
    await delayed_under_faults(engine, valkey, short_tmp / "w", count=count, spread=spread)


async def test_scheduled_jobs_come_back_with_their_times_after_flushall(
    shared: tuple[Engine, ValkeyProcess],
) -> None:
    engine, _ = shared
    redis = engine.redis.loop_client()
    try:
        at = time.time() + 3.0
        jobs = await engine.jobs.create_jobs(
            [
                JobSpec("!!fake.return_success\n", topic="flush", run_at=at + i * 0.01)
                for i in range(20)
            ]
        )
        times = {str(job.job_id): job.run_at for job in jobs}
        await redis.flushall()

        async def back() -> bool:
            found = cast(
                "list[tuple[bytes, float]]",
                await redis.zrange(keys.SCHEDULED, 0, -1, withscores=True),
            )
            return {k.decode(): v for k, v in found} == times

        # The persister sees the data loss and reconciles from OurDB.
        await async_poll(back, 10, "the scheduled set rebuilt")
        live = await engine.jobs.get_job(jobs[0].job_id)
        assert live.status is JobStatus.SCHEDULED
        async with running_watchdog(engine, worker_count=5):
            await wait_jobs_ended(engine, [job.job_id for job in jobs], 20)
        for job in jobs:
            history = await engine.jobs.job_history(job.job_id)
            started = [v for v in history if v.status is JobStatus.ACTIVE]
            assert len(started) == 1
            assert started[0].time_start >= job.run_at - STAMP_SLACK
    finally:
        await redis.aclose()
