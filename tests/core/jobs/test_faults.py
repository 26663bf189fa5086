"""No job lost: a Redis that forgets everything, and workers killed mid-job."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core.api import JobSpec
from core.engine import Engine
from core.jobs import JobStatus
from core.watchdog import WatchDog
from core.watchdog.service import build_processors, build_registry, watchdog_settings
from tests.helpers import ValkeyProcess, start_valkey, wait_jobs_ended


@pytest.fixture
def shared(idle_engine: Engine, valkey: ValkeyProcess) -> tuple[Engine, ValkeyProcess]:
    """An engine that runs no jobs itself, and the external valkey it uses."""
    return idle_engine, valkey


async def test_valkey_restarted_empty_with_500_queued(
    shared: tuple[Engine, ValkeyProcess], short_tmp: Path
) -> None:
    engine, valkey = shared
    jobs = await engine.jobs.create_jobs(
        [JobSpec(f"!!fake.return_success message:n{i}\n", topic="flaky") for i in range(500)]
    )
    valkey.process.kill()
    valkey.process.wait(5)
    fresh_dir = short_tmp / "fresh"
    fresh_dir.mkdir()
    fresh = start_valkey(fresh_dir, port=valkey.port)
    try:
        dog = WatchDog(
            engine.redis.loop_client(),
            build_processors(engine.config, build_registry(engine.config)),
            watchdog_settings(
                replace(engine.config, jobs=replace(engine.config.jobs, worker_count=5))
            ),
        )
        await dog.start()
        try:
            await wait_jobs_ended(engine, [j.job_id for j in jobs], 60)
        finally:
            await dog.stop()
        for job in jobs:
            assert (await engine.jobs.stored_job(job.job_id)).status is JobStatus.DONE
    finally:
        fresh.stop()


def spawn_worker(url: str, data: Path, slots: int | None = None) -> subprocess.Popen[bytes]:
    """A real `heroagent worker` process with a 1 s lease (and `slots` job slots if given)."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "heroagent_tui", "--config", os.devnull),
            *("--data-dir", str(data), "--redis-url", url, "worker"),
        ],
        env={
            **os.environ,
            "HEROAGENT_JOBS_LEASE_SECONDS": "1",
            "HEROAGENT_JOBS_MAX_ATTEMPTS": "50",
            **({"HEROAGENT_JOBS_WORKER_COUNT": str(slots)} if slots else {}),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def kill_workers_under_load(
    engine: Engine, valkey: ValkeyProcess, data: Path, jobs_count: int, kills: int
) -> None:
    jobs = await engine.jobs.create_jobs(
        [JobSpec("!!fake.sleep seconds:0.005\n", topic="load") for _ in range(jobs_count)]
    )
    ids = [j.job_id for j in jobs]
    rng = random.Random(7)
    worker = spawn_worker(valkey.url, data)
    try:
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.2, 0.6))
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(5)
            worker = spawn_worker(valkey.url, data)
        await wait_jobs_ended(engine, ids, 120)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
    for job_id in ids:
        history = await engine.jobs.job_history(job_id)
        ends = [v for v in history if v.status.ended]
        assert len(ends) == 1, f"job {job_id} ended {len(ends)} times"
        assert ends[0].status is JobStatus.DONE, ends[0].error


async def test_worker_sigkilled_mid_job_loses_nothing(
    shared: tuple[Engine, ValkeyProcess], short_tmp: Path
) -> None:
    engine, valkey = shared
    await kill_workers_under_load(engine, valkey, short_tmp / "w", jobs_count=300, kills=5)


@pytest.mark.slow
async def test_worker_sigkilled_20_times_under_2000_jobs(
    shared: tuple[Engine, ValkeyProcess], short_tmp: Path
) -> None:
    engine, valkey = shared
    await kill_workers_under_load(engine, valkey, short_tmp / "w", jobs_count=2000, kills=20)
