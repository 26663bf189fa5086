"""No job lost: a Redis that forgets everything, and workers killed mid-job."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
from pathlib import Path

from core.api import JobSpec
from core.engine import Engine
from core.jobs import JobStatus
from tests import helpers
from tests.helpers import (
    ValkeyProcess,
    running_watchdog,
    short_and_soak,
    start_valkey,
    wait_jobs_ended,
)


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
        async with running_watchdog(engine, worker_count=5):
            await wait_jobs_ended(engine, [j.job_id for j in jobs], 60)
        for job in jobs:
            assert (await engine.jobs.stored_job(job.job_id)).status is JobStatus.DONE
    finally:
        fresh.stop()


def spawn_worker(url: str, data: Path) -> subprocess.Popen[bytes]:
    """A worker whose jobs a short lease hands back soon after it is killed."""
    return helpers.spawn_worker(
        url, data, HEROAGENT_JOBS_LEASE_SECONDS="1", HEROAGENT_JOBS_MAX_ATTEMPTS="50"
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


@short_and_soak(("jobs_count", "kills"), (300, 5), (2000, 20))
async def test_worker_sigkilled_mid_job_loses_nothing(
    shared: tuple[Engine, ValkeyProcess], short_tmp: Path, jobs_count: int, kills: int
) -> None:
    engine, valkey = shared
    await kill_workers_under_load(engine, valkey, short_tmp / "w", jobs_count, kills)
