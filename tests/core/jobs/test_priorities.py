"""Priorities: higher levels first, FIFO within one, round robin across equal queues."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from core.api import JobSpec
from core.engine import Engine
from core.jobs import JobStatus, keys
from core.jobs.manager import JobError
from core.jobs.queue import JobQueue
from tests.helpers import async_poll, running_watchdog, wait_jobs_ended


async def run_order(engine: Engine, ids: list[int]) -> list[int]:
    """Run the queued jobs on one slot; the ids in the order they started."""
    async with running_watchdog(engine, 1):
        await wait_jobs_ended(engine, ids, 60)
    stored = await asyncio.to_thread(engine.jobs.read_many, ids)
    return sorted(ids, key=lambda job_id: stored[job_id].time_start)


async def test_ten_urgent_jobs_queued_after_a_hundred_run_first(idle_engine: Engine) -> None:
    low = await idle_engine.jobs.create_jobs(
        [JobSpec("!!fake.return_success\n", topic="mixed") for _ in range(100)]
    )
    high = await idle_engine.jobs.create_jobs(
        [JobSpec("!!fake.return_success\n", topic="mixed", priority=9) for _ in range(10)]
    )
    low_ids, high_ids = [j.job_id for j in low], [j.job_id for j in high]
    assert await run_order(idle_engine, low_ids + high_ids) == high_ids + low_ids


async def test_priority_order_survives_a_flushall(idle_engine: Engine) -> None:
    specs = [JobSpec("!!fake.return_success\n", topic="flush", priority=i % 3) for i in range(30)]
    jobs = await idle_engine.jobs.create_jobs(specs)
    redis = idle_engine.redis.loop_client()
    try:
        await redis.flushall()

        async def rebuilt() -> bool:
            return int(await redis.llen(keys.queue_key("default", "flush", 2))) == 10

        # The persister sees the data loss and requeues from OurDB, each at its level.
        await async_poll(rebuilt, 10, "the level 2 list rebuilt")
        assert int(await redis.llen(keys.queue_key("default", "flush", 1))) == 10
        assert int(await redis.llen(keys.queue_key("default", "flush"))) == 10
    finally:
        await redis.aclose()
    by_level = [[j.job_id for j in jobs if j.priority == p] for p in (2, 1, 0)]
    expected = [job_id for level in by_level for job_id in level]
    assert await run_order(idle_engine, [j.job_id for j in jobs]) == expected


async def test_queues_of_one_level_take_turns_above_the_levels_below(idle_engine: Engine) -> None:
    for topic in ("a", "b"):
        await idle_engine.jobs.create_jobs(
            [JobSpec("!!core.echo\n", topic=topic, priority=5) for _ in range(4)]
        )
    await idle_engine.jobs.create_jobs([JobSpec("!!core.echo\n", topic="c") for _ in range(4)])
    await idle_engine.jobs.create_jobs(
        [JobSpec("!!core.echo\n", topic="d", priority=3) for _ in range(2)]
    )
    queue = JobQueue(idle_engine.redis.loop_client())
    served: list[str] = []
    try:
        for _ in range(7):
            served += [lease.job.topic for lease in await queue.fetch_many("rr-test", 2)]
        assert await queue.redis.smembers(keys.LEVELS) == set()
    finally:
        await queue.redis.aclose()
    assert served[:8] in (["a", "b"] * 4, ["b", "a"] * 4), served
    assert served[8:] == ["d", "d", "c", "c", "c", "c"], served


async def test_requeue_retry_reap_and_promotion_keep_the_level(idle_engine: Engine) -> None:
    manager = idle_engine.jobs
    redis = idle_engine.redis.loop_client()
    queue = JobQueue(redis)
    level = keys.queue_key("default", "keep", 7)
    try:
        (job,) = await manager.create_jobs(
            [JobSpec("!!core.echo\n", topic="keep", priority=7, delay=0.2)]
        )
        assert job.status is JobStatus.SCHEDULED

        async def promoted() -> bool:
            return await redis.lrange(level, 0, -1) == [str(job.job_id).encode()]

        await async_poll(promoted, 10, "the delayed job promoted to level 7")
        # A worker that took it and died: the reaper hands it back to level 7.
        (lease,) = await queue.fetch_many("lost-worker", 1)
        assert await queue.reap_worker("lost-worker", max_attempts=5) == 1
        assert await redis.lrange(level, 0, -1) == [str(job.job_id).encode()]
        # At once: the reaper's version may still be on its way to OurDB.
        await manager.cancel_job(job.job_id)
        assert await redis.llen(level) == 0
        await manager.requeue_job(job.job_id)
        assert await redis.lrange(level, 0, -1) == [str(job.job_id).encode()]
        assert lease.job.priority == 7
    finally:
        await redis.aclose()


@pytest.mark.parametrize("bad", [10, -1, True, 2.5, "9"])
async def test_a_priority_outside_0_to_9_is_refused(idle_engine: Engine, bad: object) -> None:
    spec = JobSpec("!!core.echo\n", priority=bad)  # type: ignore[arg-type]  # hostile input
    with pytest.raises(JobError, match="priority must be a whole number from 0 to 9"):
        await idle_engine.jobs.create_jobs([spec])


async def test_no_priorities_in_use_leave_no_level_keys(idle_engine: Engine) -> None:
    await idle_engine.jobs.create_jobs([JobSpec("!!core.echo\n", topic="plain")])
    redis: aioredis.Redis = idle_engine.redis.loop_client()
    try:
        assert await redis.keys("heroqueue:default:plain*") == [b"heroqueue:default:plain"]
        assert await redis.exists(keys.LEVELS) == 0
    finally:
        await redis.aclose()
