"""The worker's batched hot path: one COMPLETE call per batch, each outcome fenced alone."""

from __future__ import annotations

from core.engine import Engine
from core.jobs.model import JobStatus
from core.jobs.queue import Completion, JobQueue
from tests.helpers import wait_job_ended


async def test_a_batch_with_a_fenced_outcome_stores_only_the_valid_one(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    reclaimed = await jobs.create_job("hot", "!!fake.return_success\n")
    kept = await jobs.create_job("hot", "!!fake.return_success\n")
    queue = JobQueue(jobs.queue.redis)
    # The first worker takes the reclaimed one; it never registered, so the reaper hands
    # it back at once, and a second worker takes it with a new fence.
    (late,) = await queue.fetch_many("lost:1:aa", 1)
    assert late.job.job_id == reclaimed.job_id
    assert await queue.reap_worker("lost:1:aa", max_attempts=5) == 1
    (current,) = await queue.fetch_many("alive:1:bb", 1)
    assert current.job.job_id == reclaimed.job_id
    (valid,) = await queue.fetch_many("lost:1:aa", 1)
    assert valid.job.job_id == kept.job_id

    recorded = await queue.complete_many(
        [
            Completion(late, JobStatus.DONE, "late"),
            Completion(valid, JobStatus.DONE, "valid", log_lines=("a line",)),
        ]
    )

    assert recorded == [False, True]
    ended = await wait_job_ended(idle_engine, kept.job_id)
    assert (ended.status, ended.result, ended.log_lines) == ("done", "valid", ("a line",))
    live = await queue.get_live(reclaimed.job_id)
    assert live is not None
    assert (live.status, live.worker, live.result) == (JobStatus.ACTIVE, "alive:1:bb", "")
    # The current holder's outcome still lands.
    assert await queue.complete_many([Completion(current, JobStatus.DONE, "current")]) == [True]
    assert (await wait_job_ended(idle_engine, reclaimed.job_id)).result == "current"


async def test_an_outcome_utf8_cannot_carry_is_stored_with_the_text_replaced(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    job = await jobs.create_job("hot", "!!fake.return_success\n")
    queue = JobQueue(jobs.queue.redis)
    (lease,) = await queue.fetch_many("w:1:cc", 1)
    # A lone surrogate, as json.loads makes of "\ud800" in an action's result.
    done = Completion(lease, JobStatus.DONE, "bad \ud800 text", log_lines=("line \udfff",))

    assert await queue.complete_many([done]) == [True]
    ended = await wait_job_ended(idle_engine, job.job_id)
    assert (ended.status, ended.result, ended.log_lines) == ("done", "bad ? text", ("line ?",))
