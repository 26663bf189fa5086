"""A submit whose ENQUEUE the server refuses stands: the stored job is queued once it answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from core.api import JobView
from core.config import Config
from core.engine import Engine
from core.jobs import keys
from core.jobs.model import Job
from tests.helpers import ValkeyProcess, async_poll, idle_config, running_watchdog, wait_job_ended

SCRIPT = "!!fake.return_success message:ok\n"


@pytest.fixture
async def admin(valkey: ValkeyProcess) -> AsyncIterator[aioredis.Redis]:
    """A client of the test's own server as a user of its own, which may change the rest."""
    default = aioredis.Redis.from_url(valkey.url)
    await default.acl_setuser("admin", enabled=True, passwords=["+admin"], commands=["+@all"],
                              keys=["*"], channels=["*"])  # fmt: skip
    await default.aclose()
    client = aioredis.Redis(
        host="127.0.0.1", port=valkey.port, username="admin", password="admin",
        decode_responses=True,
    )  # fmt: skip
    try:
        yield client
    finally:
        await take_scripts(client)
        await client.aclose()


async def refuse_scripts(admin: aioredis.Redis) -> None:
    # Every ENQUEUE is a script: the engine's user may run none, and gets NOPERM. (The
    # server keeps what it holds, as after a lost reply or a dropped connection.)
    await admin.acl_setuser("default", enabled=True, commands=["-eval", "-evalsha"])


async def take_scripts(admin: aioredis.Redis) -> None:
    await admin.acl_setuser("default", enabled=True, commands=["+eval", "+evalsha"])


async def test_a_refused_enqueue_keeps_the_job_and_queues_it_once_the_server_takes_it(
    engine_config: Config, valkey: ValkeyProcess, admin: aioredis.Redis
) -> None:
    async with Engine(idle_config(engine_config, valkey)) as engine:
        await refuse_scripts(admin)
        job = await engine.api.submit(SCRIPT, topic="t")
        # The submit stands: the job is in OurDB, and the server has no trace of it yet.
        assert (await engine.api.job(job.job_id)).status == "new"
        assert not await admin.hexists(keys.JOB_LOCATION, str(job.job_id))
        assert list(engine.jobs.unqueued) == [job.job_id]
        assert engine.api.health().unqueued == 1
        await take_scripts(admin)
        await async_poll(
            lambda: admin.hexists(keys.JOB_LOCATION, str(job.job_id)), 30, "the job queued"
        )
        await async_poll(lambda: _empty(engine), 10, "the unqueued list emptied")
        async with running_watchdog(engine, 1):
            ended = await wait_job_ended(engine, job.job_id)
        assert ended.status == "done"
        history = await engine.api.history(job.job_id)
        assert [version.status for version in history] == ["new", "active", "done"]
        # Queued once: nothing of it is left in the queue to run a second time.
        assert await admin.llen(keys.queue_key("default", "t")) == 0


async def test_a_requeue_the_server_refuses_stands_and_runs_once_it_answers(
    engine_config: Config, valkey: ValkeyProcess, admin: aioredis.Redis
) -> None:
    async with Engine(idle_config(engine_config, valkey)) as engine:
        job = await a_done_job(engine)
        await refuse_scripts(admin)
        assert (await engine.api.requeue(job.job_id)).status == "new"
        assert (await engine.api.job(job.job_id)).status == "new"
        assert list(engine.jobs.unqueued) == [job.job_id]
        await take_scripts(admin)
        async with running_watchdog(engine, 1):
            await wait_job_ended(engine, job.job_id, 30)
        statuses = [version.status for version in await engine.api.history(job.job_id)]
        assert statuses == ["new", "active", "done", "new", "active", "done"]


async def a_done_job(engine: Engine) -> JobView:
    """A job submitted and run to its end by a watchdog of one slot, stopped after."""
    job = await engine.api.submit(SCRIPT, topic="t")
    async with running_watchdog(engine, 1):
        return await wait_job_ended(engine, job.job_id)


async def _empty(engine: Engine) -> bool:
    return not engine.jobs.unqueued


async def test_a_job_the_server_took_after_all_is_not_queued_twice(
    engine_config: Config, valkey: ValkeyProcess, admin: aioredis.Redis
) -> None:
    # The ENQUEUE ran and its reply was lost: the job is live, and asking again leaves it.
    async with Engine(idle_config(engine_config, valkey)) as engine:
        job = await engine.api.submit(SCRIPT, topic="t")
        engine.jobs._hold_unqueued([await engine.jobs.stored_job(job.job_id)], OSError("lost"))
        await async_poll(lambda: _empty(engine), 10, "the unqueued list emptied")
        assert await admin.lrange(keys.queue_key("default", "t"), 0, -1) == [str(job.job_id)]


async def test_a_job_that_ran_and_ended_meanwhile_is_not_queued_again(
    engine_config: Config, valkey: ValkeyProcess, admin: aioredis.Redis
) -> None:
    # Its ENQUEUE ran (the reply lost), a worker took it, and its end is durable: the
    # server dropped it, and OurDB says it has ended.
    async with Engine(idle_config(engine_config, valkey)) as engine:
        job = await a_done_job(engine)
        assert await engine.jobs._queue_stored([job.job_id]) == 0
        assert not await admin.hexists(keys.JOB_LOCATION, str(job.job_id))
        assert await admin.llen(keys.queue_key("default", "t")) == 0
        assert [v.status for v in await engine.api.history(job.job_id)] == ["new", "active", "done"]


async def test_a_cancel_while_the_job_is_queued_again_keeps_it_cancelled(
    engine_config: Config,
    valkey: ValkeyProcess,
    admin: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cancel comes between the read of the stored job and its ENQUEUE: queued from
    # what was read, the cancelled job would run after all.
    async with Engine(idle_config(engine_config, valkey)) as engine:
        await refuse_scripts(admin)
        job = await engine.api.submit(SCRIPT, topic="t")
        assert list(engine.jobs.unqueued) == [job.job_id]
        queue = engine.jobs.queue
        enqueue = queue.enqueue
        key = keys.job_key("default", "t", job.job_id)
        cancels: list[asyncio.Future[JobView]] = []

        async def cancel_first(jobs: Sequence[Job], *args: Any, **kwargs: Any) -> None:
            if not cancels and any(j.job_id == job.job_id for j in jobs):
                cancels.append(asyncio.ensure_future(engine.api.cancel(job.job_id)))

                async def its_step_ran() -> bool:
                    return cancels[0].done() or await admin.hget(key, "status") == "error"

                await async_poll(its_step_ran, 10, "the cancel's step")
            await enqueue(jobs, *args, **kwargs)

        monkeypatch.setattr(queue, "enqueue", cancel_first)
        await take_scripts(admin)
        await async_poll(lambda: _empty(engine), 30, "the unqueued list emptied")
        assert (await asyncio.wait_for(cancels[0], 10)).status == "error"
        history = await engine.api.history(job.job_id)
        assert [(v.status, v.error_kind) for v in history] == [
            ("new", ""),
            ("error", "cancelled"),
        ]
        # Nothing of it is queued, and the server keeps no hash of it to run.
        assert await admin.llen(keys.queue_key("default", "t")) == 0
        await async_poll(lambda: _gone(admin, key), 10, "the cancelled job's hash dropped")
        assert not await admin.hexists(keys.JOB_LOCATION, str(job.job_id))


async def _gone(admin: aioredis.Redis, key: str) -> bool:
    return not await admin.exists(key)
