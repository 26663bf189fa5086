"""A run's `active` version: carried by its end's stream entry, or reported on its own."""

from __future__ import annotations

from core.engine import Engine
from core.jobs import keys
from core.jobs.model import Job, JobStatus
from core.jobs.queue import Completion, JobQueue, Lease
from tests.helpers import async_poll, wait_job_ended


async def _entries_added(queue: JobQueue) -> int:
    """How many entries the stream ever took (the persister deletes the ones it stored)."""
    info = await queue.redis.xinfo_stream(keys.STREAM)
    return int(info["entries-added"])


async def _statuses(engine: Engine, job_id: int) -> list[str]:
    return [v.status.value for v in await engine.jobs.job_history(job_id)]


async def _taken(engine: Engine, topic: str, worker: str = "w:1:aa") -> tuple[Job, JobQueue, Lease]:
    """A new job of `topic`, handed to `worker` (a worker of this test's own making)."""
    job = await engine.jobs.create_job(topic, "!!fake.return_success\n")
    queue = JobQueue(engine.jobs.queue.redis)
    (lease,) = await queue.fetch_many(worker, 1)
    assert lease.job.job_id == job.job_id
    return job, queue, lease


async def _taken_again(engine: Engine, topic: str) -> tuple[Job, JobQueue, Lease, Lease]:
    """A job taken by a worker that is lost at once, then by a live one: both leases."""
    job, queue, lost = await _taken(engine, topic, "lost:1:aa")
    # Never registered: its lease is gone, so the reaper hands the job back at once.
    assert await queue.reap_worker("lost:1:aa", max_attempts=5) == 1
    (current,) = await queue.fetch_many("alive:1:bb", 1)
    return job, queue, lost, current


async def test_a_short_run_leaves_one_entry_that_carries_its_active_and_its_end(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    added = await _entries_added(JobQueue(jobs.queue.redis))
    job, queue, lease = await _taken(idle_engine, "short")
    assert await _entries_added(queue) == added
    assert await queue.complete_many([Completion(lease, JobStatus.DONE, "ok")]) == [True]
    assert await _entries_added(queue) == added + 1

    await wait_job_ended(idle_engine, job.job_id)
    new, active, done = await jobs.job_history(job.job_id)
    assert (new.status, active.status, done.status) == ("new", "active", "done")
    assert active.worker == done.worker == "w:1:aa"
    assert active.time_start == done.time_start > 0
    assert (active.result, active.time_end, active.log_lines) == ("", 0.0, [])
    assert new.revision < active.revision == done.revision - 1
    assert done.result == "ok"


async def test_a_retry_shows_the_run_as_it_was_with_the_attempt_before_it(
    idle_engine: Engine,
) -> None:
    """What the end writes over is put back as it was, not emptied: an exact snapshot."""
    jobs = idle_engine.jobs
    job, queue, first = await _taken(idle_engine, "retried")
    failed = Completion(first, JobStatus.SCHEDULED, error="boom", error_kind="failed")
    assert await queue.complete_many([failed]) == [True]
    await queue.promote_due()
    (second,) = await async_poll(lambda: queue.fetch_many("w:1:aa", 1), 10, "the retry")
    assert await queue.complete_many([Completion(second, JobStatus.DONE, "ok")]) == [True]

    await wait_job_ended(idle_engine, job.job_id)
    history = await jobs.job_history(job.job_id)
    statuses = [v.status.value for v in history]
    assert statuses[:3] == ["new", "active", "scheduled"]
    assert statuses[-2:] == ["active", "done"]
    again = history[-2]
    assert (again.attempts, again.error, again.error_kind) == (2, "boom", "failed")
    assert history[-1].error == ""


async def test_a_run_handed_back_keeps_its_active_version_before_the_hand_back(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    job, queue, lost, current = await _taken_again(idle_engine, "lost")

    async def handed_back() -> bool:
        return await _statuses(idle_engine, job.job_id) == ["new", "active", "new"]

    await async_poll(handed_back, 10, "the run and its hand-back in the history")
    assert await queue.complete_many([Completion(current, JobStatus.DONE, "ok")]) == [True]
    await wait_job_ended(idle_engine, job.job_id)
    history = await jobs.job_history(job.job_id)
    assert [v.status.value for v in history] == ["new", "active", "new", "active", "done"]
    assert [v.worker for v in history[1::2]] == ["lost:1:aa", "alive:1:bb"]
    assert lost.fence != current.fence


async def test_a_cancelled_run_keeps_its_active_version_before_the_cancel(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    job, queue, lease = await _taken(idle_engine, "cancelled")
    await idle_engine.api.cancel(job.job_id)
    assert await _statuses(idle_engine, job.job_id) == ["new", "active", "error"]
    active = (await jobs.job_history(job.job_id))[1]
    assert active.worker == "w:1:aa"
    # Its worker's outcome comes too late: the cancel took the fence.
    assert await queue.complete_many([Completion(lease, JobStatus.DONE, "late")]) == [False]


async def test_started_reports_a_running_job_once_and_only_while_it_is_ours(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    job, queue, late, current = await _taken_again(idle_engine, "long")
    added = await _entries_added(queue)
    # The hand-back reported the first run; the second is not reported yet.
    assert await queue.report_started([late]) == 0
    assert await queue.report_started([current]) == 1
    assert await queue.report_started([current]) == 0
    assert await _entries_added(queue) == added + 1

    async def running() -> bool:
        return (await jobs.stored_job(job.job_id)).worker == "alive:1:bb"

    await async_poll(running, 10, "the second run's active version in OurDB")
    # Reported already, so its end comes alone.
    assert await queue.complete_many([Completion(current, JobStatus.DONE, "ok")]) == [True]
    assert await _entries_added(queue) == added + 2
    await wait_job_ended(idle_engine, job.job_id)
    history = await _statuses(idle_engine, job.job_id)
    assert history == ["new", "active", "new", "active", "done"]


async def test_an_entry_drained_again_after_a_crash_adds_no_version(idle_engine: Engine) -> None:
    """Both versions of an end's entry were stored; its acknowledgement was lost."""
    jobs = idle_engine.jobs
    job, queue, lease = await _taken(idle_engine, "again")
    assert await queue.complete_many([Completion(lease, JobStatus.DONE, "ok")]) == [True]
    await wait_job_ended(idle_engine, job.job_id)
    stored = await jobs.job_history(job.job_id)
    commits = jobs.db.db.stats.commits

    await jobs.persist(stored[1:], skip_duplicates=True)
    # Nothing written: the `active` before the end is found stored too, not only the end.
    assert jobs.db.db.stats.commits == commits
    assert await jobs.job_history(job.job_id) == stored
