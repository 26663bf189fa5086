"""A persisted batch leaves Redis and reaches other processes in one script run and one message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import redis.asyncio as aioredis

from core.api import JobSpec
from core.events import JobStateChanged
from core.events.bus import EventBus
from core.jobs import keys, persister
from core.jobs.index import JobIndex
from core.jobs.manager import JobManager
from core.jobs.model import Job, JobStatus, ParamsType
from core.jobs.queue import JobQueue
from core.ourdb import AsyncOurDB
from core.redis_server.blocking import cancel_blocked
from tests.helpers import ValkeyProcess, async_poll

JOBS = 500


@dataclass
class Setup:
    manager: JobManager
    redis: aioredis.Redis
    bus: EventBus
    url: str


@pytest.fixture
async def setup(valkey: ValkeyProcess, short_tmp: Path) -> AsyncIterator[Setup]:
    """A JobManager alone on its own valkey: no watchdog or persister sends commands."""
    redis = aioredis.Redis.from_url(valkey.url)
    db = await AsyncOurDB(short_tmp / "ourdb").open()
    index = JobIndex(short_tmp / "index.sqlite")
    bus = EventBus()
    manager = JobManager(db, index, JobQueue(redis), bus, short_tmp / "results")
    try:
        yield Setup(manager, redis, bus, valkey.url)
    finally:
        await db.close()
        index.close()
        await redis.aclose()


async def command_calls(redis: aioredis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()}


async def ended_in_redis(redis: aioredis.Redis, ended: list[Job]) -> None:
    """Leave each hash as a COMPLETE does: done, at revision 3 (ENQUEUE took 1, FETCH 2)."""
    async with redis.pipeline(transaction=False) as pipe:
        for job in ended:
            key = keys.job_key(job.circle_id, job.topic, job.job_id)
            pipe.hset(key, mapping={"status": "done", "revision": 3})
        await pipe.execute()


async def subscribed(url: str) -> tuple[aioredis.Redis, Any]:
    """A second client subscribed to the events channel, once the server confirmed it."""
    listener = aioredis.Redis.from_url(url)
    pubsub = listener.pubsub()
    await pubsub.subscribe(keys.EVENTS_CHANNEL)
    confirmed = await pubsub.get_message(timeout=5)
    assert confirmed is not None
    assert confirmed["type"] == "subscribe"
    return listener, pubsub


async def test_a_batch_of_ended_jobs_leaves_redis_in_one_script_run_and_one_message(
    setup: Setup,
) -> None:
    manager, redis = setup.manager, setup.redis
    jobs = await manager.create_jobs([JobSpec("!!fake.return_success\n", topic="t")] * JOBS)
    ended = [replace(job, status=JobStatus.DONE, result="ok", revision=3) for job in jobs]
    await ended_in_redis(redis, ended)
    # One job was requeued meanwhile: its hash says new, so it must stay.
    kept = ended[7]
    await redis.hset(keys.job_key(kept.circle_id, kept.topic, kept.job_id), "status", "new")

    listener, pubsub = await subscribed(setup.url)
    with setup.bus.subscribe() as events:
        before = await command_calls(redis)
        await manager.persist(ended)
        after = await command_calls(redis)
        told = [e for e in events.drain() if isinstance(e, JobStateChanged)]
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    await pubsub.aclose()
    await listener.aclose()

    def delta(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    assert delta("evalsha") + delta("eval") == 1
    assert delta("publish") == 1
    assert delta("hmget") == JOBS  # the script's checks, one per job, all in that one run
    assert message is not None
    batch = orjson.loads(message["data"])
    assert [(e["id"], e["status"]) for e in batch] == [(j.job_id, "done") for j in ended]
    assert [(e.job_id, e.status) for e in told] == [(j.job_id, "done") for j in ended]
    for job in ended:
        live = await redis.exists(keys.job_key(job.circle_id, job.topic, job.job_id))
        located = await redis.hexists(keys.JOB_LOCATION, str(job.job_id))
        assert (live, located) == ((1, True) if job is kept else (0, False))
        history = await manager.job_history(job.job_id)
        assert [v.status for v in history] == [JobStatus.NEW, JobStatus.DONE]


async def test_a_batch_tells_each_job_once_in_its_last_version(setup: Setup) -> None:
    """A short job's active version and its end, persisted together: one event, the end."""
    manager, redis = setup.manager, setup.redis
    jobs = await manager.create_jobs([JobSpec("!!fake.return_success\n", topic="t")] * 20)
    active = [replace(job, status=JobStatus.ACTIVE, worker="w", revision=2) for job in jobs]
    ended = [replace(job, status=JobStatus.DONE, result="ok", revision=3) for job in active]
    await ended_in_redis(redis, ended)
    versions = [v for pair in zip(active, ended, strict=True) for v in pair]

    listener, pubsub = await subscribed(setup.url)
    with setup.bus.subscribe() as events:
        await manager.persist(versions)
        told = [e for e in events.drain() if isinstance(e, JobStateChanged)]
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    await pubsub.aclose()
    await listener.aclose()

    assert message is not None
    batch = orjson.loads(message["data"])
    assert [(e["id"], e["status"]) for e in batch] == [(j.job_id, "done") for j in ended]
    assert [(e.job_id, e.status) for e in told] == [(j.job_id, "done") for j in ended]
    for job in ended:
        history = await manager.job_history(job.job_id)
        assert [v.status for v in history] == [JobStatus.NEW, JobStatus.ACTIVE, JobStatus.DONE]


async def test_a_single_change_is_still_one_plain_object(setup: Setup) -> None:
    """Readers that only know the one-object form still understand single changes."""
    listener, pubsub = await subscribed(setup.url)
    job = await setup.manager.create_job("t", "!!fake.return_success\n")
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    await pubsub.aclose()
    await listener.aclose()
    assert message is not None
    event = orjson.loads(message["data"])
    assert (event["type"], event["id"], event["status"]) == ("job", job.job_id, "new")


def test_a_stream_entry_reads_as_its_hash_does() -> None:
    job = Job(
        job_id=12,
        topic="t",
        params='{"a": 1}',
        circle_id="c",
        params_type=ParamsType.RHAISCRIPT,
        status=JobStatus.ERROR,
        timeout=2.5,
        session_key="s",
        time_scheduled=1.25,
        time_start=2.5,
        time_end=3.75,
        error="boom é",
        result="r",
        log=True,
        attempts=3,
        worker="w1",
        log_lines=["one", "twö"],
        result_file="/x",
        progress=0.75,
        progress_message="three quarters",
    )
    # As FETCH/COMPLETE write it: every hash field as bytes, plus some the job lacks.
    entry = {k.encode(): v.encode() for k, v in job.to_hash().items()} | {b"fence": b"9"}
    assert Job.from_stream(entry) == job == Job.from_hash(entry)
    assert Job.from_stream(entry).status is JobStatus.ERROR
    fresh = Job(job_id=1, topic="t", params="")
    fresh_entry = {k.encode(): v.encode() for k, v in fresh.to_hash().items()}
    assert Job.from_stream(fresh_entry) == fresh
    # The same record bytes as the job it came from (fields in their order), and lists
    # of its own: two jobs read from entries share none.
    assert Job.from_stream(entry).to_json() == job.to_json()
    one, two = Job.from_stream(fresh_entry), Job.from_stream(fresh_entry)
    one.log_lines.append("x")
    assert two.log_lines == []
    assert one.depends_on is not two.depends_on
    with pytest.raises(TypeError, match="topic"):
        Job.from_stream({b"job_id": b"1", b"params": b""})
    # No progress reported: no field in the hash, none in the OurDB record.
    assert b"progress" not in fresh_entry
    assert b"progress" not in fresh.to_json()
    assert Job.from_json(job.to_json(), 1).progress == 0.75
    with pytest.raises(ValueError, match="nope"):
        Job.from_stream({**entry, b"status": b"nope"})


async def test_the_batch_entries_are_acknowledged_and_deleted_in_the_same_script_run(
    setup: Setup,
) -> None:
    manager, redis = setup.manager, setup.redis
    jobs = await manager.create_jobs([JobSpec("!!fake.return_success\n", topic="t")] * 3)
    await redis.xgroup_create(keys.STREAM, keys.STREAM_GROUP, id="0", mkstream=True)
    for job in jobs:
        await redis.xadd(keys.STREAM, {k: v for k, v in job.to_hash().items()})
    reply = await redis.xreadgroup(keys.STREAM_GROUP, "engine", {keys.STREAM: ">"}, count=10)
    # As the persister reads it (redis-py's reply type does not say which form it is).
    entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(Any, reply)[0][1]
    before = await command_calls(redis)
    await manager.persist(
        [Job.from_stream(fields) for _, fields in entries],
        acknowledge=[entry_id for entry_id, _ in entries],
    )
    after = await command_calls(redis)
    assert after["eval"] - before.get("eval", 0) == 1
    assert after["xack"] - before.get("xack", 0) == 1
    assert await redis.xlen(keys.STREAM) == 0
    assert (await redis.xpending(keys.STREAM, keys.STREAM_GROUP))["pending"] == 0
    # Nothing ended: every job stays in Redis.
    for job in jobs:
        assert await redis.exists(keys.job_key(job.circle_id, job.topic, job.job_id))


async def test_the_persister_reads_its_next_batch_while_the_last_one_is_acknowledged(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A check of the server turns the read ahead off for its batch: none in this test.
    monkeypatch.setattr(persister, "EPOCH_CHECK_SECONDS", 3600.0)
    manager, redis = setup.manager, setup.redis
    first, second = await manager.create_jobs([JobSpec("!!fake.return_success\n", topic="t")] * 2)
    # The server takes no EVAL (the batch's acknowledgement) until the gate opens.
    gate = asyncio.Event()
    evaluate = redis.eval

    async def held(*args: Any) -> Any:
        await gate.wait()
        return await evaluate(*args)

    redis.eval = held  # type: ignore[method-assign,assignment]  # the one command held back

    async def pending_is(count: int) -> bool:
        return bool((await redis.xpending(keys.STREAM, keys.STREAM_GROUP))["pending"] == count)

    async def report(job: Job) -> None:
        active = replace(job, status=JobStatus.ACTIVE, revision=job.revision + 1)
        await redis.xadd(keys.STREAM, {k: v for k, v in active.to_hash().items()})

    async def lost() -> None:
        raise AssertionError("the server did not lose its data")

    consumer = persister.Persister(redis, manager, lost)
    await consumer.prepare()
    running = asyncio.create_task(consumer.run())
    try:
        await report(first)
        await async_poll(lambda: pending_is(1), what="the first batch read")
        # Its EVAL waits; the second version is read all the same.
        await report(second)
        await async_poll(lambda: pending_is(2), what="the next batch read ahead")
        stored = await manager.stored_job(first.job_id)
        assert stored is not None
        assert stored.status is JobStatus.ACTIVE
        gate.set()
        await async_poll(lambda: pending_is(0), what="both batches acknowledged")
        stored = await manager.stored_job(second.job_id)
        assert stored is not None
        assert stored.status is JobStatus.ACTIVE
    finally:
        consumer.stopping = True
        gate.set()
        await cancel_blocked([running], redis)


async def test_the_last_drain_at_a_stop_takes_entries_read_and_never_persisted(
    setup: Setup,
) -> None:
    manager, redis = setup.manager, setup.redis
    (job,) = await manager.create_jobs([JobSpec("!!fake.return_success\n", topic="t")])

    async def lost() -> None:
        raise AssertionError("the server did not lose its data")

    consumer = persister.Persister(redis, manager, lost)
    await consumer.prepare()
    active = replace(job, status=JobStatus.ACTIVE, revision=job.revision + 1)
    await redis.xadd(keys.STREAM, {k: v for k, v in active.to_hash().items()})
    # Delivered to the engine's consumer and never acknowledged, as a read ahead that a
    # stop cut short leaves it.
    assert await redis.xreadgroup(
        keys.STREAM_GROUP, persister.CONSUMER, {keys.STREAM: ">"}, count=10
    )

    await consumer.drain_new()

    assert (await redis.xpending(keys.STREAM, keys.STREAM_GROUP))["pending"] == 0
    stored = await manager.stored_job(job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.ACTIVE
