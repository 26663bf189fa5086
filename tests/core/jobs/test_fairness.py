"""Fetching serves busy queues in turn, and the reporter sends outcomes in batches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import redis.asyncio as aioredis

from core.api import JobSpec
from core.engine import Engine
from core.jobs import JobStatus
from core.jobs import keys as job_keys
from core.jobs.queue import Completion, JobQueue
from core.watchdog import WatchDog
from core.watchdog.pool import Reporter
from core.watchdog.service import build_processors, build_registry, watchdog_settings
from tests.helpers import wait_jobs_ended

QUEUES = ("q1", "q2", "q3", "q4")


async def test_four_busy_queues_are_served_in_turn(idle_engine: Engine) -> None:
    made = []
    for topic in QUEUES:  # one queue after the other: the worst order for fairness
        made += await idle_engine.jobs.create_jobs(
            [JobSpec("!!fake.sleep seconds:0.01\n", topic=topic) for _ in range(500)]
        )
    config = replace(idle_engine.config, jobs=replace(idle_engine.config.jobs, worker_count=5))
    dog = WatchDog(
        idle_engine.redis.loop_client(),
        build_processors(config, build_registry(config)),
        watchdog_settings(config),
    )
    redis = idle_engine.redis.client()
    left: dict[str, int] = {}
    await dog.start()
    try:
        async with asyncio.timeout(60):
            while True:
                async with redis.pipeline(transaction=False) as pipe:
                    for topic in QUEUES:
                        pipe.llen(job_keys.queue_key("default", topic))
                    depths = await pipe.execute()
                if min(depths) == 0:
                    left = dict(zip(QUEUES, depths, strict=True))
                    break
                await asyncio.sleep(0.005)
        await wait_jobs_ended(idle_engine, [job.job_id for job in made], 60)
    finally:
        await dog.stop()
        await dog.redis.aclose()
        await redis.aclose()
    # When the first queue runs dry, none of the others has more than 10% left.
    # When the first queue runs dry, the others are about as far: the bound is
    # 10% (50 jobs); true round robin keeps them within a couple of fetches (2%).
    assert max(left.values()) <= 10, left


async def test_consecutive_fetches_never_serve_a_queue_twice_while_others_wait(
    idle_engine: Engine,
) -> None:
    for topic in QUEUES:
        await idle_engine.jobs.create_jobs(
            [JobSpec("!!core.echo\n", topic=topic) for _ in range(10)]
        )
    queue = JobQueue(idle_engine.redis.loop_client())
    served: list[str] = []
    try:
        for _ in range(8):  # two jobs per fetch, as a worker with two free slots asks
            served += [lease.job.topic for lease in await queue.fetch_many("rr-test", 2)]
    finally:
        await queue.redis.aclose()
    assert len(served) == 16
    for at in range(0, 16, 4):
        assert sorted(served[at : at + 4]) == list(QUEUES), served


class CountingQueue(JobQueue):
    """The real queue, remembering how many outcomes each round trip carried."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.batches: list[int] = []

    async def complete_many(self, outcomes: Sequence[Completion]) -> list[bool]:
        self.batches.append(len(outcomes))
        return await super().complete_many(outcomes)


async def test_the_reporter_sends_outcomes_that_finish_together_in_one_round_trip(
    idle_engine: Engine,
) -> None:
    await idle_engine.jobs.create_jobs([JobSpec("!!core.echo\n", topic="r") for _ in range(51)])
    queue = CountingQueue(idle_engine.redis.loop_client())
    try:
        leases = await queue.fetch_many("reporter-test", 51)
        assert len(leases) == 51
        reporter = Reporter(queue)
        lone = await reporter.report(Completion(leases[0], JobStatus.DONE, result="1"))
        # A lone outcome waits for no company.
        assert (lone, queue.batches) == (True, [1])
        recorded = await asyncio.gather(
            *(reporter.report(Completion(lease, JobStatus.DONE)) for lease in leases[1:])
        )
        assert all(recorded)
        assert queue.batches == [1, 50]
        # An outcome whose lease was handed on meanwhile is fenced off, not recorded.
        stale = replace(leases[1], fence="0")
        assert await reporter.report(Completion(stale, JobStatus.ERROR)) is False
    finally:
        await queue.redis.aclose()
