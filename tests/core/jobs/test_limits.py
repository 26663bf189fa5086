"""Limits per queue over every worker: max_active and rate hold jobs back, never lose them."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.api import JobRefused, JobSpec
from core.config import Config, ConfigError, QueueConfig, load_config, parse_rate
from core.engine import Engine
from core.jobs import Job, JobStatus, keys
from tests import helpers
from tests.helpers import ValkeyProcess, async_poll, idle_config, running_watchdog, wait_jobs_ended

Workers = list[subprocess.Popen[bytes]]


@asynccontextmanager
async def limited_queue(
    engine: Engine, topic: str, *, max_active: int = 0, rate: str = ""
) -> AsyncIterator[aioredis.Redis]:
    """`default/<topic>` with these limits; yields a client of the engine's server."""
    await engine.api.set_queue_limits("default", topic, max_active=max_active, rate=rate)
    redis = engine.redis.loop_client()
    try:
        yield redis
    finally:
        await redis.aclose()


@asynccontextmanager
async def running_workers(
    redis: aioredis.Redis, url: str, data: Path, count: int
) -> AsyncIterator[Workers]:
    """`count` worker processes of 10 slots, once the server has that many registered."""
    workers = [
        helpers.spawn_worker(
            url,
            data / str(n),
            HEROAGENT_JOBS_LEASE_SECONDS="1",
            HEROAGENT_JOBS_MAX_ATTEMPTS="50",
            HEROAGENT_JOBS_WORKER_COUNT="10",
        )
        for n in range(count)
    ]
    try:

        async def registered() -> bool:
            return int(await redis.scard(keys.WORKERS)) >= count

        await async_poll(registered, 30, f"{count} workers registered")
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)  # a deadline: a loaded machine stops a process slowly


@dataclass
class Rig:
    """The idle engine, its valkey and a temp dir: what a test starts worker processes with."""

    engine: Engine
    url: str
    data: Path

    @asynccontextmanager
    async def limited(
        self, topic: str, workers: int, data: str = "w", *, max_active: int = 0, rate: str = ""
    ) -> AsyncIterator[tuple[aioredis.Redis, Workers]]:
        """`default/<topic>` with these limits, and `workers` processes (their data in `data`)."""
        async with (
            limited_queue(self.engine, topic, max_active=max_active, rate=rate) as redis,
            running_workers(redis, self.url, self.data / data, workers) as procs,
        ):
            yield redis, procs

    async def submit(self, params: str, topic: str, count: int) -> list[Job]:
        """`count` jobs of these params on `default/<topic>`, in one batch."""
        specs = [JobSpec(params, topic=topic) for _ in range(count)]
        return await self.engine.jobs.create_jobs(specs)


@pytest.fixture
def rig(idle_engine: Engine, valkey: ValkeyProcess, short_tmp: Path) -> Rig:
    return Rig(idle_engine, valkey.url, short_tmp)


async def ran_once(engine: Engine, ids: Sequence[int]) -> list[Job]:
    """Each job's one done version (none ran twice, none is lost), in start order."""
    done = []
    for job_id in ids:
        history = await engine.jobs.job_history(job_id)
        ends = [v for v in history if v.status.ended]
        assert [v.status for v in ends] == [JobStatus.DONE], f"job {job_id}: {history}"
        done.append(ends[0])
    return sorted(done, key=lambda job: job.time_start)


def most_at_once(runs: Sequence[Job]) -> int:
    """The most runs that overlapped in time."""
    edges = sorted([(j.time_start, 1) for j in runs] + [(j.time_end, -1) for j in runs])
    return max(itertools.accumulate(step for _, step in edges))


async def test_max_active_2_holds_over_three_workers_of_ten_slots(rig: Rig) -> None:
    engine = rig.engine
    async with rig.limited("capped", 3, max_active=2) as (redis, _):
        capped = await rig.submit("!!fake.sleep seconds:0.05\n", "capped", 40)
        # A queue without limits beside it runs as wide as the slots allow.
        free = await rig.submit("!!fake.sleep seconds:0.2\n", "free", 20)
        ids = [j.job_id for j in capped]
        names = [keys.job_key("default", "capped", i) for i in ids]
        peak = 0
        waiting = True
        while waiting:
            # In one MULTI: a snapshot. Read one by one, a job that ended after it was
            # read and one that started before the next read would both count.
            async with redis.pipeline(transaction=True) as pipe:
                for name in names:
                    pipe.hget(name, "status")
                statuses = await pipe.execute()
            peak = max(peak, sum(s == b"active" for s in statuses))
            assert peak <= 2, f"{peak} jobs of the capped queue active at once"
            # A job's hash leaves Redis once its end is persisted (None).
            waiting = any(s in (b"new", b"active") for s in statuses)
            await asyncio.sleep(0.01)  # the sampling period the issue sets
        await wait_jobs_ended(engine, ids + [j.job_id for j in free], 60)
    assert peak == 2
    # The stored times are each worker's clock, read before its step ran on the server:
    # on a loaded machine a start stamped before another job's end may still come after
    # it there. Redis's snapshots above are what the limit is held to; the free queue's
    # times only need to show it ran wide.
    await ran_once(engine, ids)
    assert most_at_once(await ran_once(engine, [j.job_id for j in free])) > 2


async def rate_run(rig: Rig, rate: str, count: int, workers: int) -> list[Job]:
    async with rig.limited("paced", workers, rate=rate):
        jobs = await rig.submit("!!fake.return_success\n", "paced", count)
        await wait_jobs_ended(rig.engine, [j.job_id for j in jobs], count * 2 + 30)
    runs = await ran_once(rig.engine, [j.job_id for j in jobs])
    starts, period = parse_rate(rate)
    # Never more than `starts` in any one period (the server's clock spaces them).
    for first, later in zip(runs, runs[starts:], strict=False):
        assert later.time_start - first.time_start >= period * 0.99, (first, later)
    return runs


async def test_rate_10_a_second_spaces_30_jobs_over_2_5_seconds(rig: Rig) -> None:
    runs = await rate_run(rig, "10/s", 30, workers=2)
    assert runs[-1].time_start - runs[0].time_start >= 2.5


@pytest.mark.slow
async def test_rate_20_a_second_over_200_jobs_takes_9_seconds(rig: Rig) -> None:
    runs = await rate_run(rig, "20/s", 200, workers=3)
    assert runs[-1].time_start - runs[0].time_start >= 9.0


async def test_a_worker_killed_holding_the_slots_frees_them(rig: Rig) -> None:
    engine = rig.engine
    async with rig.limited("held", 1, "a", max_active=2) as (redis, (doomed,)):
        jobs = await rig.submit("!!fake.sleep seconds:0.3\n", "held", 8)

        async def two_running() -> bool:
            return int(await redis.scard(keys.active_key("default:held"))) == 2

        await async_poll(two_running, 30, "two jobs running on the doomed worker")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(5)
        # The reaper of the next worker hands the two back once the lease runs out.
        async with running_workers(redis, rig.url, rig.data / "b", 1):
            await wait_jobs_ended(engine, [j.job_id for j in jobs], 60)
            assert int(await redis.scard(keys.active_key("default:held"))) == 0
    await ran_once(engine, [j.job_id for j in jobs])


async def test_limits_show_what_holds_a_queue_and_count_jobs_running_before(
    idle_engine: Engine,
) -> None:
    api = idle_engine.api
    # Long enough that all six still run when the limit is set, on a loaded machine too.
    jobs = await idle_engine.jobs.create_jobs(
        [JobSpec("!!fake.sleep seconds:3\n", topic="shown") for _ in range(6)]
    )
    async with running_watchdog(idle_engine, 10) as dog:

        async def busy(count: int) -> bool:
            return dog.busy >= count

        await async_poll(lambda: busy(6), 30, "six jobs running")
        # Set while six run: the limit counts them, and the queue holds once it has more.
        view = await api.set_queue_limits("default", "shown", max_active=1)
        assert (view.max_active, view.active) == (1, 6)
        more = await idle_engine.jobs.create_jobs(
            [JobSpec("!!fake.sleep seconds:0.5\n", topic="shown") for _ in range(3)]
        )
        (shown,) = [q for q in await api.queues() if q.name == "default/shown"]
        assert (shown.max_active, shown.held) == (1, "max_active 1")
        await api.set_queue_limits("default", "shown", rate="1/m")
        await wait_jobs_ended(idle_engine, [more[0].job_id], 30)

        async def rate_held() -> bool:
            (view,) = await api.queue_limits()
            return view.held == "rate 1/m"

        await async_poll(rate_held, 10, "the queue held by its rate")
        await api.set_queue_limits("default", "shown")
        assert await api.queue_limits() == []
        await wait_jobs_ended(idle_engine, [j.job_id for j in jobs + more], 30)


@pytest.mark.parametrize(
    ("max_active", "rate", "message"),
    [
        (-1, "", "max_active must be a whole number"),
        (0, "20/x", "is not of the form N/s"),
        (0, "0/s", "at least one start"),
        (0, "1" * 70, "the limit is 64"),
    ],
)
async def test_bad_limits_are_refused(
    idle_engine: Engine, max_active: int, rate: str, message: str
) -> None:
    with pytest.raises(JobRefused, match=message):
        await idle_engine.api.set_queue_limits("default", "q", max_active=max_active, rate=rate)


def test_queue_limits_and_priority_come_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[queues."default/mail"]\nmax_active = 2\nrate = "100/m"\npriority = 3\n')
    queue = load_config(path, env={}).config.queues["default/mail"]
    assert (queue.max_active, queue.rate, queue.priority) == (2, "100/m", 3)
    for bad, message in (
        ('rate = "fast"', "rate 'fast' is not of the form"),
        ("max_active = -2", "max_active must be"),
        ("priority = 12", "priority must be a whole number from 0 to 9"),
    ):
        path.write_text(f'[queues."default/mail"]\n{bad}\n')
        with pytest.raises(ConfigError, match=message):
            load_config(path, env={})


async def test_config_limits_are_seeded_at_start_and_after_a_flushall(
    engine_config: Config, valkey: ValkeyProcess
) -> None:
    config = replace(
        idle_config(engine_config, valkey),
        queues={"default/mail": QueueConfig(max_active=3, rate="5/s")},
    )
    async with Engine(config) as engine:
        (view,) = await engine.api.queue_limits()
        assert (view.name, view.max_active, view.rate) == ("default/mail", 3, "5/s")
        await engine.api.set_queue_limits("default", "other", max_active=1)
        redis = engine.redis.loop_client()
        try:
            await redis.flushall()

            async def restored() -> bool:
                return len(await engine.api.queue_limits()) == 2

            await async_poll(restored, 10, "the limits restored after the data loss")
        finally:
            await redis.aclose()
