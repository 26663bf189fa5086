"""A job Redis holds whose record OurDB lost (cut off with a torn tail) keeps its history."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bench.launch import stop_process
from core.api import JobView
from core.config import Config
from core.engine import Engine
from core.jobs import keys
from core.ourdb import OurDB
from tests.helpers import (
    ValkeyProcess,
    async_poll,
    idle_config,
    running_watchdog,
    spawn_worker,
    wait_job_ended,
)

SCRIPT = "!!fake.return_success message:{}\n"


async def submitted_then_cut(config: Config, *words: str) -> list[JobView]:
    """A job per word, queued by an engine that then stopped; the last one's record,
    the last written, cut off its file (what a machine's crash can do to a tail)."""
    async with Engine(config) as engine:
        jobs = [await engine.api.submit(SCRIPT.format(word), topic="t") for word in words]
    with OurDB(config.ourdb_dir) as db:
        loc = db.location(jobs[-1].job_id)
    os.truncate(config.ourdb_dir / f"{loc.file_nr}.db", loc.position)
    return jobs


@pytest.mark.parametrize("index", ["kept", "lost too"])
async def test_a_queued_job_whose_record_was_lost_runs_with_its_history(
    engine_config: Config, valkey: ValkeyProcess, index: str
) -> None:
    config = idle_config(engine_config, valkey)
    kept, lost = await submitted_then_cut(config, "kept", "lost")
    if index == "lost too":
        (config.data_path / "jobs-index.sqlite").unlink()
    async with Engine(config) as engine:
        # Restored at start from what Redis holds, so it reads as it was.
        assert (await engine.api.job(lost.job_id)).status == "new"
        async with running_watchdog(engine, 1):
            ended = await wait_job_ended(engine, lost.job_id)
            fresh = await engine.api.submit(SCRIPT.format("fresh"), topic="t")
            await wait_job_ended(engine, fresh.job_id)
        assert ended.status == "done"
        assert "lost" in ended.result
        statuses = [version.status for version in await engine.api.history(lost.job_id)]
        assert statuses == ["new", "active", "done"]
        assert fresh.job_id > lost.job_id
        listed = [view.job_id for view in await engine.api.jobs()]
        assert listed == [fresh.job_id, lost.job_id, kept.job_id]


async def test_a_job_whose_record_was_lost_and_that_ran_meanwhile_keeps_its_run(
    engine_config: Config, valkey: ValkeyProcess, short_tmp: Path
) -> None:
    # A worker ran it while the engine was down: its versions wait in the stream, and
    # the engine drains them before it reconciles.
    config = idle_config(engine_config, valkey)
    (lost,) = await submitted_then_cut(config, "lost")
    worker = spawn_worker(valkey.url, short_tmp / "worker")
    redis = aioredis.Redis.from_url(valkey.url, decode_responses=True)
    try:
        key = keys.job_key("default", "t", lost.job_id)
        await async_poll(
            lambda: _has_status(redis, key, "done"), 30, "the worker's end of the job in Redis"
        )
    finally:
        stop_process(worker, 10)
        await redis.aclose()
    async with Engine(config) as engine:
        ended = await engine.api.job(lost.job_id)
        assert ended.status == "done"
        assert "lost" in ended.result
        statuses = [version.status for version in await engine.api.history(lost.job_id)]
        assert statuses == ["active", "done"]


async def _has_status(redis: aioredis.Redis, key: str, status: str) -> bool:
    return bool(await redis.hget(key, "status") == status)


async def test_ids_redis_holds_are_not_handed_out_again_after_ourdb_lost_them(
    engine_config: Config, valkey: ValkeyProcess
) -> None:
    # The whole history gone (its counter with it) while the server kept two queued jobs:
    # a new job must not take one of their ids, or its ENQUEUE would write over its hash.
    config = idle_config(engine_config, valkey)
    async with Engine(config) as engine:
        first = await engine.api.submit(SCRIPT.format("first"), topic="t")
        second = await engine.api.submit(SCRIPT.format("second"), topic="t")
    shutil.rmtree(config.ourdb_dir)
    (config.data_path / "jobs-index.sqlite").unlink()
    async with Engine(config) as engine:
        fresh = await engine.api.submit(SCRIPT.format("fresh"), topic="t")
        assert fresh.job_id > second.job_id > first.job_id
        # The jobs the server held keep their hashes: the new one wrote over neither.
        redis = aioredis.Redis.from_url(valkey.url, decode_responses=True)
        try:
            for job, word in ((first, "first"), (second, "second")):
                hashed = await redis.hgetall(keys.job_key("default", "t", job.job_id))
                assert word in hashed["params"]
        finally:
            await redis.aclose()
        async with running_watchdog(engine, 1):
            ended = await wait_job_ended(engine, fresh.job_id)
        assert "fresh" in ended.result
