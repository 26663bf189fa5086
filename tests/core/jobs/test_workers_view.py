"""A worker's record: alive while it beats, lost once its lease runs out, gone on a clean stop."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.api import WorkerView
from core.config import Config
from core.engine import Engine
from core.jobs import keys
from tests import helpers
from tests.helpers import ValkeyProcess, async_poll

LEASE = 1.0


@pytest.fixture
async def reaping_engine(engine_config: Config, valkey: ValkeyProcess) -> AsyncIterator[Engine]:
    """An engine on an external valkey with one slot and a short lease: its reaper is quick."""
    config = replace(
        engine_config,
        enable_webdav=False,
        enable_ui=False,
        redis=replace(engine_config.redis, url=valkey.url),
        jobs=replace(engine_config.jobs, worker_count=1, lease_seconds=LEASE),
    )
    async with Engine(config) as running:
        yield running


def spawn_worker(url: str, data: Path) -> subprocess.Popen[bytes]:
    """A real `heroagent worker` with two slots and the short lease."""
    return helpers.spawn_worker(
        url, data, HEROAGENT_JOBS_WORKER_COUNT="2", HEROAGENT_JOBS_LEASE_SECONDS=f"{LEASE:g}"
    )


async def view_of(engine: Engine, pid: int) -> WorkerView | None:
    """The listed worker with this pid on this host, or None."""
    host = socket.gethostname()
    found = [w for w in await engine.api.workers() if w.pid == pid and w.host == host]
    return found[0] if found else None


async def test_a_worker_shows_alive_then_lost_when_killed_and_its_jobs_are_reclaimed(
    reaping_engine: Engine, valkey: ValkeyProcess, short_tmp: Path
) -> None:
    engine = reaping_engine
    worker = spawn_worker(valkey.url, short_tmp / "worker")
    jobs = []
    try:

        async def busy() -> WorkerView | None:
            view = await view_of(engine, worker.pid)
            return view if view is not None and view.running == 2 and view.busy == 2 else None

        # The engine's one slot takes at most one: the worker holds the other two.
        jobs = [await engine.api.submit("!!fake.sleep seconds:60\n", topic="t") for _ in range(3)]
        alive = await async_poll(busy, 30, "the worker to hold two jobs")
        assert alive is not None
        assert (alive.state, alive.slots, alive.lost) == ("alive", 2, False)
        assert alive.version
        assert 0 < alive.started <= alive.last_heartbeat
        held = {j.job_id for j in jobs if (await engine.api.job(j.job_id)).worker == alive.worker}
        assert len(held) == 2

        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

        async def reclaimed() -> WorkerView | None:
            view = await view_of(engine, worker.pid)
            return view if view is not None and view.lost and view.running == 0 else None

        lost = await async_poll(reclaimed, 30, "the worker to show lost with its jobs reclaimed")
        assert lost is not None
        assert (lost.worker, lost.slots) == (alive.worker, 2)
        for job_id in held:
            assert (await engine.api.job(job_id)).worker != alive.worker
        states = {w.state for w in await engine.api.workers()}
        assert states == {"alive", "lost"}  # the engine's own watchdog is alive
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        for job in jobs:
            await engine.api.cancel(job.job_id)


async def test_a_worker_that_stops_cleanly_is_gone(
    reaping_engine: Engine, valkey: ValkeyProcess, short_tmp: Path
) -> None:
    engine = reaping_engine
    worker = spawn_worker(valkey.url, short_tmp / "worker")
    try:
        await async_poll(lambda: view_of(engine, worker.pid), 30, "the worker to show")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        assert await view_of(engine, worker.pid) is None
        redis = aioredis.Redis.from_url(valkey.url)
        try:
            names = [n async for n in redis.scan_iter("heroagent:worker:*")]
        finally:
            await redis.aclose()
        assert len(names) == 1  # the engine's own
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)


async def test_damaged_records_read_as_zeros_and_expired_ids_are_dropped(
    reaping_engine: Engine, valkey: ValkeyProcess
) -> None:
    redis = aioredis.Redis.from_url(valkey.url)
    try:
        await redis.sadd(keys.WORKER_RECORDS, "ghost", "odd")
        await redis.hset(
            keys.worker_key("odd"),
            mapping={"slots": "many", "pid": "9" * 40, "heartbeat": "nan", "host": "h" * 1000},
        )
        views = {w.worker: w for w in await reaping_engine.api.workers()}
        assert "ghost" not in views
        assert not await redis.sismember(keys.WORKER_RECORDS, "ghost")
        odd = views["odd"]
        assert (odd.state, odd.slots, odd.pid, odd.last_heartbeat, odd.heartbeat_age) == (
            "lost",
            0,
            0,
            0.0,
            0.0,
        )
        assert len(odd.host) == 255
    finally:
        await redis.aclose()
