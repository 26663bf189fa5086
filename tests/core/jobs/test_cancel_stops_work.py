"""Timeouts and cancels stop the work: remote cancel, held slots, child processes, restarts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.api import JobView
from core.config import Config
from core.engine import Engine
from core.heroscript import ActionContext
from core.heroscript.inline import inline
from core.jobs import keys
from core.jobs.model import Job, JobStatus
from core.jobs.queue import Fetched
from core.services import supervised_task
from core.watchdog.service import WatchDogService
from tests import helpers
from tests.helpers import (
    ValkeyProcess,
    async_poll,
    async_wait_for,
    headless_config,
    one_slot_busy,
    one_slot_dog,
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


# A long lease: its heartbeat's fence check (the backstop) comes after 20 s, so a job
# that stops sooner was stopped by the cancel message.
LONG_LEASE = 60.0


class Probe:
    """An inline action that notes each job that ran it."""

    def __init__(self) -> None:
        self.ran: list[int | None] = []

    @inline
    def mark(self, ctx: ActionContext) -> None:
        """Note the job."""
        self.ran.append(ctx.job_id)


@pytest.mark.parametrize("script", ["!!fake.sleep seconds:60\n", "!!probe.mark\n"])
async def test_a_cancel_that_comes_before_the_fetch_reply_stops_the_job(
    idle_engine: Engine, script: str
) -> None:
    """The cancel and the FETCH reply come on two connections, in either order.

    A job of inline actions, which runs without a task when nothing holds it back, is
    checked too: it must not run at all.
    """
    engine = idle_engine
    probe = Probe()
    async with one_slot_dog(engine, LONG_LEASE) as dog:
        # The engine checks the params against its actors, the dog runs them with its own.
        for registry in (engine.scripts.registry, dog.processors.registry):
            assert registry is not None
            registry.register("probe", probe)
        real_fetch, real_cancel = dog.queue.fetch, dog.cancel
        heard = asyncio.Event()
        views: list[JobView] = []
        handed = asyncio.Event()

        def cancel_heard(job_id: int) -> bool:
            heard.set()
            return real_cancel(job_id)

        async def fetch_then_cancel(worker: str, count: int, wait: float = 0.0) -> Fetched:
            fetched = await real_fetch(worker, count, wait)
            if fetched.leases:
                # The server has handed the job out; the dog has not read that reply yet.
                dog.queue.fetch = real_fetch  # type: ignore[method-assign]
                views.append(await engine.api.cancel(fetched.leases[0].job.job_id))
                await asyncio.wait_for(heard.wait(), 10)
                # The dog takes the job as this returns, before the test reads `busy`.
                handed.set()
            return fetched

        dog.cancel = cancel_heard  # type: ignore[method-assign]
        dog.queue.fetch = fetch_then_cancel  # type: ignore[method-assign]
        job = await engine.jobs.create_job("t", script)
        await asyncio.wait_for(handed.wait(), 20)
        await async_wait_for(lambda: dog.busy == 0, 10, "the cancelled job to stop")
        assert [(v.job_id, v.error) for v in views] == [(job.job_id, "cancelled")]
        # The hand-out's version was in the stream still; the cancel's stays the last.
        assert (await engine.api.job(job.job_id)).error == "cancelled"
        assert dog.completed == 0  # its outcome was fenced off
    assert probe.ran == []


async def test_a_cancel_that_read_the_job_as_queued_stops_it_once_fetched(
    idle_engine: Engine,
) -> None:
    """Cancel reads the job, then ends it: a FETCH in between must not hide the cancel."""
    engine = idle_engine
    await engine.api.pause_queue("default", "held")
    async with one_slot_dog(engine, LONG_LEASE) as dog:
        job = await engine.jobs.create_job("held", "!!fake.sleep seconds:60\n")
        real_get = engine.jobs.get_job

        async def read_then_fetched(job_id: int) -> Job:
            read = await real_get(job_id)
            engine.jobs.get_job = real_get  # type: ignore[method-assign]
            assert read.status is JobStatus.NEW
            await engine.api.resume_queue("default", "held")
            await async_wait_for(lambda: job_id in dog.running, 10, "the dog to take it")
            return read

        engine.jobs.get_job = read_then_fetched  # type: ignore[method-assign]
        view = await engine.api.cancel(job.job_id)
        assert view.error == "cancelled"
        await async_wait_for(lambda: dog.busy == 0, 10, "the cancelled job to stop")
        assert dog.completed == 0


async def test_the_watchdog_takes_no_job_before_it_hears_cancels(idle_engine: Engine) -> None:
    engine = idle_engine
    redis = engine.redis.loop_client()
    try:
        (_, before) = (await redis.pubsub_numsub(keys.CANCEL_CHANNEL))[0]
        listeners: list[int] = []
        async with one_slot_dog(engine, LONG_LEASE) as dog:
            real_fetch = dog.queue.fetch

            async def fetch_counting_listeners(
                worker: str, count: int, wait: float = 0.0
            ) -> Fetched:
                if not listeners:
                    (_, n) = (await redis.pubsub_numsub(keys.CANCEL_CHANNEL))[0]
                    listeners.append(n)
                return await real_fetch(worker, count, wait)

            # Patched before the dog's first fetch: that one waits for the subscription.
            dog.queue.fetch = fetch_counting_listeners  # type: ignore[method-assign]
            job = await engine.jobs.create_job("t", "!!fake.return_success\n")
            assert (await wait_job_ended(engine, job.job_id, 20)).status == "done"
        assert listeners == [before + 1]
    finally:
        await redis.aclose()


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
    # The child's pid, not the engine's: the action really ran in another process.
    (ran,) = json.loads(done.result)
    assert isinstance(ran["result"], int)
    assert ran["result"] != os.getpid()


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
    assert isinstance(one_slot.watchdog, WatchDogService)
    dog = one_slot.watchdog.watchdog
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
    async with one_slot_busy(idle_engine, lease_seconds=1.0) as busy:
        dog, job = busy.dog, busy.job
        # What cancel does to Redis, without the message on heroagent:cancel.
        await dog.redis.hdel(keys.job_key(job.circle_id, job.topic, job.job_id), "fence")
        await async_wait_for(lambda: job.job_id not in dog.running, 2, "the job to stop")
        await async_wait_for(lambda: dog.busy == 0, 2, "the slot to free")
