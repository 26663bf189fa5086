"""The seed's job flow against a real engine: keys, states, history, and bad input."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, cast

import pytest

from core.api import JobFilter, JobSpec
from core.engine import Engine
from core.events import JobStateChanged
from core.jobs import JobError, JobNotFoundError, JobStatus
from core.jobs.manager import MAX_PARAMS_BYTES
from tests.helpers import async_poll, wait_jobs_ended


async def wait_ended(engine: Engine, job_id: int, seconds: float = 10.0) -> None:
    """Wait until the job's end is in OurDB (Redis shows it a moment earlier)."""
    await wait_jobs_ended(engine, [job_id], seconds)


async def gone_from_redis(engine: Engine, key: str) -> bool:
    redis = engine.redis.client()
    try:
        return not await redis.exists(key)
    finally:
        await redis.aclose()


async def test_seed_flow_keys_states_and_history(engine: Engine) -> None:
    jobs = engine.jobs
    redis = engine.redis.client(decode_responses=True)
    await jobs.pause_queue("default", "email")
    with engine.bus.subscribe() as events:
        job = await jobs.create_job("email", "!!fake.return_success message:sent\n")
        key = f"herojobs:default:email:{job.job_id}"
        # new: in OurDB and in Redis under the seed's keys
        assert (await jobs.stored_job(job.job_id)).status is JobStatus.NEW
        stored = await redis.hgetall(key)
        assert stored["status"] == "new"
        assert stored["topic"] == "email"
        assert await redis.lrange("heroqueue:default:email", 0, -1) == [str(job.job_id)]

        await jobs.resume_queue("default", "email")
        await wait_ended(engine, job.job_id)
        await async_poll(lambda: gone_from_redis(engine, key), 10, f"{key} to leave Redis")
        statuses = [
            e.status
            for e in events.drain()
            if isinstance(e, JobStateChanged) and e.job_id == job.job_id
        ]
    # Events are told once per job and persisted batch: a run this short shares its
    # batch with its end, so its `active` may not be told. The history has it always.
    assert statuses in (["new", "active", "done"], ["new", "done"])
    history = await jobs.job_history(job.job_id)
    assert [v.status for v in history] == [JobStatus.NEW, JobStatus.ACTIVE, JobStatus.DONE]
    final = history[-1]
    assert json.loads(final.result)[0]["result"] == "sent"
    assert final.attempts == 1
    assert final.time_scheduled <= final.time_start <= final.time_end
    assert await redis.llen("heroqueue:default:email") == 0
    assert await redis.hget("heroagent:jobloc", str(job.job_id)) is None
    assert (await jobs.get_job(job.job_id)).status is JobStatus.DONE
    await redis.aclose()


async def test_failing_action_ends_error_with_its_message(engine: Engine) -> None:
    job = await engine.jobs.create_job("t", '!!fake.return_error message:"disk full"\n')
    await wait_ended(engine, job.job_id)
    final = await engine.jobs.get_job(job.job_id)
    assert final.status is JobStatus.ERROR
    assert "disk full" in final.error
    assert "fake.return_error" in final.error


async def test_timeout_ends_the_job_within_two_seconds(engine: Engine) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    job = await engine.jobs.create_job("t", "!!fake.sleep seconds:30\n", timeout=1)
    await wait_ended(engine, job.job_id, seconds=5)
    assert loop.time() - started < 2.0
    final = await engine.jobs.get_job(job.job_id)
    assert final.status is JobStatus.ERROR
    assert final.error == "timeout after 1s"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"params": "!!a.b.c x:1\n"}, "line 1"),
        ({"params": "!!nosuch.thing a:1\n"}, "nosuch"),
        ({"params": "!!fake.return_succes message:x\n"}, "return_success"),
        ({"params": "x", "params_type": "yaml"}, "params type 'yaml' is unknown"),
        ({"params": "!!fake.return_success message:" + "x" * 70_000}, "the limit is"),
        ({"params": "!!core.echo\n", "circle": "a b"}, "circle 'a b' is not a valid name"),
        ({"params": "!!core.echo\n", "timeout": 0}, "timeout must be a positive, finite number"),
        ({"params": "!!core.echo\n", "timeout": math.inf}, "timeout must be a positive, finite"),
        ({"params": "!!core.echo\n", "timeout": math.nan}, "timeout must be a positive, finite"),
        ({"params": "{not json", "params_type": "openrpc"}, "openrpc params are not JSON"),
    ],
)
async def test_bad_submissions_are_refused_and_nothing_is_lost(
    engine: Engine, kwargs: dict[str, object], message: str
) -> None:
    jobs = engine.jobs
    kept = await jobs.create_job("keep", "!!fake.return_success message:kept\n")
    await wait_ended(engine, kept.job_id)
    next_id = await jobs.db.next_id()
    args = {"topic": "t", **kwargs}
    with pytest.raises(JobError) as info:
        await jobs.create_job(**args)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert await jobs.db.next_id() == next_id
    assert json.loads((await jobs.get_job(kept.job_id)).result)[0]["result"] == "kept"


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ({"delay": math.inf}, "delay must be zero or a positive, finite number"),
        ({"run_at": math.nan}, "run_at must be a finite Unix time"),
        ({"backoff_base": math.inf}, "backoff_base and backoff_max must be finite"),
    ],
)
async def test_times_that_json_cannot_carry_are_refused(
    engine: Engine, times: dict[str, float], message: str
) -> None:
    next_id = await engine.jobs.db.next_id()
    with pytest.raises(JobError, match=message):
        await engine.jobs.create_jobs([JobSpec("!!core.echo\n", "t", **cast(Any, times))])
    assert await engine.jobs.db.next_id() == next_id


async def test_seventy_kilobytes_of_params_names_the_size(engine: Engine) -> None:
    with pytest.raises(
        JobError, match=rf"params are 70\d\d\d bytes; the limit is {MAX_PARAMS_BYTES}"
    ):
        await engine.jobs.create_job("t", "!!core.echo a:'" + "y" * 70_000 + "'\n")


async def test_unknown_job_id_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(JobNotFoundError, match="no job with id 999999"):
        await engine.jobs.get_job(999_999)
    with pytest.raises(JobNotFoundError):
        await engine.jobs.job_history(999_999)


async def test_large_result_is_kept_whole_in_a_file(engine: Engine) -> None:
    big = "z" * 70_000
    root = engine.config.webdav_root
    root.mkdir(parents=True, exist_ok=True)
    (root / "big.txt").write_text(big)
    job = await engine.jobs.create_job("t", "!!file.read path:big.txt\n")
    await wait_ended(engine, job.job_id)
    final = await engine.jobs.get_job(job.job_id)
    assert final.status is JobStatus.DONE
    assert final.result_file
    assert json.loads(final.result)[0]["result"] == big


async def test_list_filters_and_pages_newest_first(engine: Engine) -> None:
    jobs = engine.jobs
    made = [
        await jobs.create_job(topic, f"!!fake.return_success message:m{i}\n")
        for i, topic in enumerate(["a", "b", "a", "a"])
    ]
    for job in made:
        await wait_ended(engine, job.job_id)
    newest = await jobs.list_jobs(JobFilter(topic="a"), limit=2)
    assert [j.job_id for j in newest] == [made[3].job_id, made[2].job_id]
    older = await jobs.list_jobs(JobFilter(topic="a"), limit=2, before_id=made[2].job_id)
    assert [j.job_id for j in older] == [made[0].job_id]
    assert [j.job_id for j in await jobs.list_jobs(JobFilter(text="m1"))] == [made[1].job_id]
    assert len(await jobs.list_jobs(JobFilter(status="done"))) == 4
    stats = {(s.circle, s.topic): s for s in await jobs.queue_stats()}
    assert stats[("default", "a")].counts["done"] == 3


async def test_cancel_and_requeue(engine: Engine) -> None:
    jobs = engine.jobs
    await jobs.pause_queue("default", "slow")
    job = await jobs.create_job("slow", "!!fake.return_success message:again\n")
    cancelled = await jobs.cancel_job(job.job_id)
    assert cancelled.status is JobStatus.ERROR
    assert cancelled.error == "cancelled"
    await jobs.resume_queue("default", "slow")
    again = await jobs.requeue_job(job.job_id)
    assert again.status is JobStatus.NEW
    await wait_ended(engine, job.job_id)
    assert (await jobs.get_job(job.job_id)).status is JobStatus.DONE
    statuses = [v.status.value for v in await jobs.job_history(job.job_id)]
    assert statuses == ["new", "error", "new", "active", "done"]


async def test_a_burst_of_a_thousand_jobs_all_complete(engine: Engine) -> None:
    # Each job's events once cost a connection of their own; a burst exhausted the pool.
    made = await engine.jobs.create_jobs(
        [JobSpec(f"!!fake.return_success message:b{i}\n", topic="burst") for i in range(1000)]
    )
    await wait_jobs_ended(engine, [job.job_id for job in made], seconds=60)
    stats = {(s.circle, s.topic): s for s in await engine.jobs.queue_stats()}
    assert stats[("default", "burst")].counts["done"] == 1000
