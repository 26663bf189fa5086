"""Timeouts and cancels stop the work: remote cancel, held slots, child processes, restarts."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.config import Config
from core.engine import Engine
from core.jobs import keys
from core.services import supervised_task
from core.watchdog import WatchDog
from core.watchdog.service import build_processors, build_registry, watchdog_settings
from tests import helpers
from tests.helpers import (
    ValkeyProcess,
    async_poll,
    async_wait_for,
    headless_config,
    pid_running,
    wait_job_ended,
)


def spawn_worker(url: str, data: Path) -> subprocess.Popen[bytes]:
    """A real `heroagent worker` with one slot and a long lease.

    The lease is long on purpose: the heartbeat's fence check would stop a cancelled job
    too, within a third of it; this test is about the cancel message, which is faster.
    """
    return helpers.spawn_worker(
        url, data, HEROAGENT_JOBS_WORKER_COUNT="1", HEROAGENT_JOBS_LEASE_SECONDS="30"
    )


async def test_cancel_stops_a_job_on_a_remote_worker(
    idle_engine: Engine, valkey: ValkeyProcess, short_tmp: Path
) -> None:
    engine = idle_engine
    data = short_tmp / "worker"
    written = data / "webdav" / "side-effect.txt"
    after = data / "webdav" / "after.txt"
    redis = aioredis.Redis.from_url(valkey.url)
    worker = spawn_worker(valkey.url, data)
    try:
        slow = await engine.api.submit(
            "!!fake.sleep seconds:2\n!!file.write path:side-effect.txt content:oops\n",
            topic="t",
            timeout=60,
        )

        async def held() -> list[bytes | str]:
            names = [n async for n in redis.scan_iter("heroagent:processing:*")]
            return [i for n in names for i in await redis.lrange(n, 0, -1)]

        await async_poll(held, 30, "the worker to take the job")
        processing = [n async for n in redis.scan_iter("heroagent:processing:*")]
        assert len(processing) == 1
        view = await engine.api.cancel(slow.job_id)
        assert view.status == "error"
        assert view.error == "cancelled"
        cancelled_at = asyncio.get_running_loop().time()
        # The worker's slot frees at once: its processing list empties...
        await async_poll(lambda: _empty(redis, processing[0]), 2, "the slot to free")
        # ...and its one slot takes the next job. That one sleeps past the moment the
        # cancelled job would have written its file, then writes its own.
        follow = await engine.api.submit(
            "!!fake.sleep seconds:2.5\n!!file.write path:after.txt content:ok\n", topic="t"
        )

        async def follow_active() -> bool:
            return (await engine.api.job(follow.job_id)).status == "active"

        await async_poll(follow_active, 2, "the freed slot to take the next job")
        assert asyncio.get_running_loop().time() - cancelled_at < 2.5
        assert (await wait_job_ended(engine, follow.job_id, 20)).status == "done"
        assert after.exists()
        assert not written.exists(), "the cancelled job went on to its side effect"
        assert (await engine.api.job(slow.job_id)).error == "cancelled"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
        await redis.aclose()


async def _empty(redis: aioredis.Redis, key: bytes) -> bool:
    return await redis.llen(key) == 0


@pytest.fixture
async def one_slot(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine with one local job slot and the blocking actors."""
    modules = ["tests.core.jobs.blocking_actors"]
    config = headless_config(
        engine_config, actor_modules=modules, worker_count=1, lease_seconds=1.0
    )
    async with Engine(config) as engine:
        yield engine


async def test_timed_out_sync_action_keeps_its_slot_until_its_thread_ends(
    one_slot: Engine,
) -> None:
    engine = one_slot
    assert engine.watchdog is not None
    blocked = await engine.api.submit("!!blocking.block seconds:2\n", topic="t", timeout=0.5)
    queued = await engine.api.submit("!!fake.return_success\n", topic="t")
    ended = await wait_job_ended(engine, blocked.job_id)
    assert ended.status == "error"
    assert ended.error == "timeout after 0.5s"
    # Marked at the timeout, yet the thread still runs: the one slot is not free.
    await async_wait_for(lambda: engine.watchdog and engine.watchdog.abandoned_slots == 1)
    assert "1 held by threads abandoned after timeout" in engine.watchdog.detail()
    health = engine.api.health()
    assert (health.slots, health.busy_slots, health.abandoned_slots) == (1, 1, 1)
    assert (await engine.api.job(queued.job_id)).status == "new"
    done = await wait_job_ended(engine, queued.job_id)
    assert done.status == "done"
    # It started only once the thread was done with its 2 seconds.
    assert done.time_start - ended.time_start >= 1.9
    assert engine.watchdog.abandoned_slots == 0


async def test_action_in_a_child_process_is_killed_at_the_timeout(one_slot: Engine) -> None:
    engine = one_slot
    assert engine.watchdog is not None
    job = await engine.api.submit(
        "!!blocking.block_in_child seconds:30\n", topic="t", timeout=2, log=True
    )
    ended = await wait_job_ended(engine, job.job_id, 15)
    assert ended.status == "error"
    assert ended.error == "timeout after 2s"
    started = [line for line in ended.log_lines if line.startswith("child pid ")]
    assert started, ended.log_lines
    pid = int(started[0].split()[-1])
    await async_wait_for(lambda: not pid_running(pid), 2, "the child to be killed")
    # Killed, not abandoned: the slot is free for the next job at once.
    assert engine.watchdog.abandoned_slots == 0
    after = await engine.api.submit("!!fake.return_success\n", topic="t")
    assert (await wait_job_ended(engine, after.job_id)).status == "done"


async def test_action_in_a_child_process_returns_its_result(one_slot: Engine) -> None:
    job = await one_slot.api.submit("!!blocking.block_in_child seconds:0\n", topic="t")
    done = await wait_job_ended(one_slot, job.job_id, 15)
    assert done.status == "done", done.error
    assert '"result": ' in done.result


async def test_a_crashed_background_loop_restarts_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    finished = asyncio.Event()
    crashes: list[Exception] = []

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run breaks")
        finished.set()

    with caplog.at_level(logging.ERROR):
        task = supervised_task("flaky", flaky, logging.getLogger("test.flaky"), crashes.append)
        async with asyncio.timeout(5):
            await finished.wait()
        await task
    assert calls == 2
    assert [str(e) for e in crashes] == ["first run breaks"]
    record = next(r for r in caplog.records if r.name == "test.flaky")
    assert record.exc_info is not None
    assert "flaky crashed" in record.getMessage()


async def test_watchdog_loop_that_crashes_comes_back(one_slot: Engine) -> None:
    dog = one_slot.watchdog.watchdog if one_slot.watchdog else None
    assert dog is not None
    real_reap = dog.queue.reap
    calls = 0

    async def reap_breaks_once(max_attempts: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("a bug in the reaper")
        return await real_reap(max_attempts)

    dog.queue.reap = reap_breaks_once  # type: ignore[method-assign]
    await async_wait_for(lambda: calls >= 2, 30, "the reaper to run again")
    assert dog.restarts == 1
    # Jobs still run.
    job = await one_slot.api.submit("!!fake.return_success\n", topic="t")
    assert (await wait_job_ended(one_slot, job.job_id)).status == "done"


async def test_a_job_whose_fence_is_gone_stops_without_a_message(idle_engine: Engine) -> None:
    """The backstop for a missed cancel message: the heartbeat sees the fence gone."""
    engine = idle_engine
    config = replace(engine.config, jobs=replace(engine.config.jobs, worker_count=1))
    dog = WatchDog(
        engine.redis.loop_client(),
        build_processors(config, build_registry(config)),
        replace(watchdog_settings(config), lease_seconds=1.0),
    )
    await dog.start()
    try:
        job = await engine.jobs.create_job("t", "!!fake.sleep seconds:30\n")
        await async_wait_for(lambda: job.job_id in dog.running, 10, "the job to run")
        # What cancel does to Redis, without the message on heroagent:cancel.
        await dog.redis.hdel(keys.job_key(job.circle_id, job.topic, job.job_id), "fence")
        await async_wait_for(lambda: job.job_id not in dog.running, 2, "the job to stop")
        await async_wait_for(lambda: dog.busy == 0, 2, "the slot to free")
    finally:
        await dog.stop()
        await dog.redis.aclose()
