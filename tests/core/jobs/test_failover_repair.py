"""A new server behind the same address (a failover): the engine repairs it from OurDB."""

from __future__ import annotations

from dataclasses import replace

from core.engine import Engine
from core.jobs import keys
from core.jobs.model import JobStatus
from core.jobs.persister import Persister
from core.jobs.queue import Completion, JobQueue
from tests.helpers import async_poll


def _persister(engine: Engine) -> Persister:
    assert engine.history is not None
    persister = engine.history._persister
    assert persister is not None
    return persister


async def test_a_changed_server_is_repaired_and_late_reports_do_not_end_a_job_twice(
    idle_engine: Engine,
) -> None:
    engine = idle_engine
    jobs = engine.jobs
    queue = jobs.queue
    # Ended in OurDB, yet still queued on the server: its end never reached the replica.
    ended = await jobs.create_job("t", "!!core.echo message:a\n")
    ended = await jobs.complete_job(ended.job_id, "ok")
    await queue.enqueue([replace(ended, status=JobStatus.NEW, result="")])
    # Submitted (in OurDB), but its queue entry is gone: the replica never got it.
    lost = await jobs.create_job("t", "!!core.echo message:b\n")
    async with queue.redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.job_key(lost.circle_id, lost.topic, lost.job_id))
        pipe.hdel(keys.JOB_LOCATION, str(lost.job_id))
        pipe.lrem(keys.queue_key(lost.circle_id, lost.topic), 0, str(lost.job_id))
        await pipe.execute()

    persister = _persister(engine)
    # What a failover looks like from here: the same address, another server's run id.
    persister.server_id = "the-old-primary"

    async def repaired() -> bool:
        return persister.server_changes == 1

    await async_poll(repaired, 10, "the persister to repair the changed server")
    assert await queue.get_live(ended.job_id) is None
    requeued = await queue.get_live(lost.job_id)
    assert requeued is not None
    assert requeued.status is JobStatus.NEW

    # A worker runs the ended job again from a copy the repair did not see, and reports.
    await queue.enqueue([replace(ended, status=JobStatus.NEW, result="")])
    waiting = keys.queue_key(ended.circle_id, ended.topic)
    await queue.redis.lrem(waiting, 0, str(ended.job_id))
    await queue.redis.lpush(waiting, ended.job_id)  # ahead of the requeued one
    ghost = JobQueue(queue.redis)
    leases = await ghost.fetch_many("ghost:1:aa", 1)
    assert [lease.job.job_id for lease in leases] == [ended.job_id]
    assert await ghost.complete_many([Completion(leases[0], JobStatus.DONE, "again")]) == [True]

    async def dropped() -> bool:
        return await queue.get_live(ended.job_id) is None

    await async_poll(dropped, 10, "the stale report to be dropped from the server")
    history = await jobs.job_history(ended.job_id)
    assert [v.status for v in history].count(JobStatus.DONE) == 1
    assert (await jobs.stored_job(ended.job_id)).result == "ok"
