"""Seed a history fast: ended jobs written straight to OurDB and the index, in batches."""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import replace

from core.jobs.manager import JobManager
from core.jobs.model import ErrorKind, Job, JobStatus

BATCH = 1_000


async def seed_ended(
    manager: JobManager,
    count: int,
    *,
    status: JobStatus = JobStatus.DONE,
    ended_at: float | None = None,
    topic: str = "seed",
) -> list[int]:
    """`count` jobs with two versions each (new, then ended); their ids, ascending.

    Each batch is two OurDB group commits and one index transaction: no Redis, no
    worker, as the persister would have left them once they ended.
    """
    ids: list[int] = []
    for first in range(0, count, BATCH):
        size = min(BATCH, count - first)
        now = time.time()
        drafts = [
            Job(0, topic, f"!!fake.return_success message:'job {first + n}'\n", time_scheduled=now)
            for n in range(size)
        ]
        new_ids = await manager.db.set_many([job.to_json() for job in drafts])
        end = now if ended_at is None else ended_at
        error = status is JobStatus.ERROR
        ended = [
            replace(
                job,
                job_id=job_id,
                status=status,
                time_start=end,
                time_end=end,
                attempts=1,
                result="" if error else f"done {job_id}",
                error="failed on purpose" if error else "",
                error_kind=ErrorKind.FAILED.value if error else "",
            )
            for job, job_id in zip(drafts, new_ids, strict=True)
        ]
        records = [(job.to_json(), job.job_id) for job in ended]
        await manager.db.set_many(records)
        crcs = {job_id: zlib.crc32(raw) for raw, job_id in records}
        await asyncio.to_thread(manager.index.upsert, ended, crcs)
        ids.extend(new_ids)
    return ids
