"""Revisions: the history stays in the order of the changes, however each one was stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.api import JobFilter, JobSpec
from core.engine import Engine
from core.events.bus import EventBus
from core.jobs import keys
from core.jobs.index import JobIndex
from core.jobs.manager import JobError, JobManager, JobNotFoundError, _stored_before_its_run
from core.jobs.model import ErrorKind, Job, JobStatus
from core.jobs.persister import Persister
from core.jobs.purge import purge
from core.jobs.queue import Completion, JobQueue, Lease
from core.ourdb import AsyncOurDB
from tests.helpers import ValkeyProcess, async_poll

NEW, SCHEDULED, ACTIVE = JobStatus.NEW, JobStatus.SCHEDULED, JobStatus.ACTIVE
DONE, ERROR = JobStatus.DONE, JobStatus.ERROR


@dataclass
class History:
    """A manager and its persister on their own valkey; the persister drains when told."""

    manager: JobManager
    queue: JobQueue
    persister: Persister

    async def revision(self, job: Job) -> int:
        """The revision the job's hash holds now."""
        key = keys.job_key(job.circle_id, job.topic, job.job_id)
        return int(await self.queue.redis.hget(key, "revision") or 0)

    async def hand_out(self, worker: str = "w", *, reported: bool = True) -> tuple[Job, Lease]:
        """A new job, and its lease to `worker`.

        `reported`: it ran long enough for its worker to report it `active`, a version
        that waits in the stream; else that version rides on whatever ends the run.
        """
        (job,) = await self.manager.create_jobs([JobSpec("!!core.echo\n", topic="t")])
        (lease,) = await self.queue.fetch_many(worker, 1)
        assert lease.job.job_id == job.job_id
        if reported:
            assert await self.queue.report_started([lease]) == 1
        return job, lease

    async def in_flight(self) -> int:
        """Versions reported through the stream and not persisted yet."""
        return int(await self.queue.redis.xlen(keys.STREAM))


@pytest.fixture
async def history(valkey: ValkeyProcess, short_tmp: Path) -> AsyncIterator[History]:
    redis = aioredis.Redis.from_url(valkey.url)
    db = await AsyncOurDB(short_tmp / "ourdb").open()
    index = JobIndex(short_tmp / "index.sqlite")
    queue = JobQueue(redis)
    manager = JobManager(db, index, queue, EventBus(), short_tmp / "results")

    async def lost() -> None:
        raise AssertionError("the server lost its data")

    persister = Persister(redis, manager, lost)
    await persister.prepare()
    try:
        yield History(manager, queue, persister)
    finally:
        await db.close()
        index.close()
        await redis.aclose()


async def stored_statuses(manager: JobManager, job_id: int) -> list[JobStatus]:
    versions = await manager.job_history(job_id)
    revisions = [v.revision for v in versions]
    assert revisions == sorted(set(revisions)), revisions
    return [v.status for v in versions]


async def stored_as(manager: JobManager, job_id: int, status: JobStatus) -> Job:
    """The job's last stored version once it has this status (the persister drains)."""

    async def found() -> Job | None:
        stored = await manager.stored_job(job_id)
        return stored if stored.status is status else None

    job = await async_poll(found, 10, f"job {job_id} stored as {status}")
    assert job is not None
    return job


async def handed_out(manager: JobManager) -> tuple[Job, Job]:
    """A new job handed to worker "w", reported running, and its `active` once stored."""
    (job,) = await manager.create_jobs([JobSpec("!!core.echo\n", topic="t")])
    leases = await manager.queue.fetch_many("w", 1)
    assert await manager.queue.report_started(leases) == 1
    return job, await stored_as(manager, job.job_id, ACTIVE)


async def test_a_cancel_at_once_after_a_hand_back_stays_the_last_version(
    history: History,
) -> None:
    manager, queue = history.manager, history.queue
    job, _ = await history.hand_out("lost-worker")
    assert await queue.reap_worker("lost-worker", max_attempts=5) == 1
    # The hand-out and the hand-back wait in the stream; the cancel is written directly.
    assert await history.in_flight() == 2
    await manager.cancel_job(job.job_id)
    await history.persister.drain_new()

    stored = await manager.stored_job(job.job_id)
    assert (stored.status, stored.error_kind) == (ERROR, ErrorKind.CANCELLED)
    # Stored late, the reaper's versions still read before the cancel.
    assert await stored_statuses(manager, job.job_id) == [NEW, ACTIVE, NEW, ERROR]
    assert manager.index.query(JobFilter(status="error"), limit=5) == [job.job_id]
    requeued = await manager.requeue_job(job.job_id)
    assert requeued.status is NEW
    live = await queue.get_live(job.job_id)
    assert live is not None
    assert live.status is NEW
    assert await stored_statuses(manager, job.job_id) == [NEW, ACTIVE, NEW, ERROR, NEW]


async def test_a_requeue_before_the_outcome_is_stored_keeps_that_outcome(
    history: History,
) -> None:
    manager, queue = history.manager, history.queue
    job, lease = await history.hand_out()
    assert await queue.complete_many([Completion(lease, DONE, "first run")]) == [True]
    # The hash says done while its version is in flight: the requeue is allowed.
    await manager.requeue_job(job.job_id)
    await history.persister.drain_new()

    assert (await manager.stored_job(job.job_id)).status is NEW
    versions = await manager.job_history(job.job_id)
    assert [v.status for v in versions] == [NEW, ACTIVE, DONE, NEW]
    assert versions[2].result == "first run"
    # The late end did not drop the requeued job from Redis.
    live = await queue.get_live(job.job_id)
    assert live is not None
    assert live.status is NEW
    assert await queue.fetch_many("w", 1)


async def test_a_version_reported_before_a_purge_does_not_bring_the_job_back(
    history: History,
) -> None:
    manager = history.manager
    job, _ = await history.hand_out()
    await manager.cancel_job(job.job_id)
    assert await purge(manager, JobFilter(status="error")) == 1
    assert await history.in_flight() == 1
    await history.persister.drain_new()

    with pytest.raises(JobNotFoundError):
        await manager.stored_job(job.job_id)
    assert manager.index.query(JobFilter(), limit=5) == []
    assert await history.in_flight() == 0


async def test_every_transition_takes_a_revision(history: History) -> None:
    manager, queue = history.manager, history.queue
    job, lease = await history.hand_out()
    seen = [1]  # ENQUEUE's

    async def step() -> None:
        seen.append(await history.revision(job))

    await step()
    retry = Completion(lease, SCHEDULED, error="boom", error_kind="failed")
    assert await queue.complete_many([retry]) == [True]
    await step()
    assert (await queue.promote_due())[0] == 1
    await step()
    await queue.fetch_many("w", 1)
    await step()
    assert await queue.reap_worker("w", max_attempts=5) == 1
    await step()
    await manager.update_job_status(job.job_id, ACTIVE)
    await step()
    await manager.cancel_job(job.job_id)
    assert seen == sorted(set(seen)), seen
    await history.persister.drain_new()
    await manager.requeue_job(job.job_id)
    await step()
    assert seen == sorted(set(seen)), seen

    versions = await manager.job_history(job.job_id)
    assert [v.status for v in versions] == [NEW, ACTIVE, SCHEDULED, ACTIVE, NEW, ACTIVE, ERROR, NEW]
    revisions = [v.revision for v in versions]
    assert revisions == sorted(set(revisions)), revisions
    # The hash counts at least as far as the last version stored.
    assert seen[-1] >= revisions[-1]


@pytest.mark.parametrize("outcome", [DONE, ERROR])
async def test_a_parents_end_takes_a_revision_of_its_dependant(
    history: History, outcome: JobStatus
) -> None:
    manager, queue = history.manager, history.queue
    parent, child = await manager.create_jobs(
        [
            JobSpec("!!core.echo\n", topic="t", name="parent"),
            JobSpec("!!core.echo\n", topic="t", depends_on=["parent"]),
        ]
    )
    waiting = await history.revision(child)
    (lease,) = await queue.fetch_many("w", 1)
    assert lease.job.job_id == parent.job_id
    assert await queue.complete_many([Completion(lease, outcome, error_kind="failed")]) == [True]
    await history.persister.drain_new()  # the parent's end settles the child
    await history.persister.drain_new()  # a failed child's version came through the stream

    settled = await manager.get_job(child.job_id)
    assert settled.status is (NEW if outcome is DONE else ERROR)
    assert settled.revision > waiting
    versions = await manager.job_history(child.job_id)
    assert [v.revision for v in versions] == sorted({v.revision for v in versions})


async def test_the_count_goes_on_from_the_stored_version_after_a_flushall(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    job, active = await handed_out(jobs)
    await jobs.queue.redis.flushall()

    async def requeued() -> Job | None:
        return await jobs.queue.get_live(job.job_id)

    live = await async_poll(requeued, 10, "the job rebuilt from OurDB")
    assert live is not None
    interrupted = await jobs.stored_job(job.job_id)
    assert interrupted.status is NEW
    assert active.revision < interrupted.revision <= live.revision
    # The next hand-out is newer than everything stored before it.
    leases = await jobs.queue.fetch_many("w", 1)
    assert await jobs.queue.report_started(leases) == 1
    again = await stored_as(jobs, job.job_id, ACTIVE)
    assert again.revision > interrupted.revision
    assert await stored_statuses(jobs, job.job_id) == [NEW, ACTIVE, NEW, ACTIVE]


async def test_a_repair_raises_a_count_the_server_holds_below_the_stored_one(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    job, active = await handed_out(jobs)
    # What a replica that missed the hand-out's count holds.
    key = keys.job_key(job.circle_id, job.topic, job.job_id)
    await jobs.queue.redis.hset(key, "revision", 0)
    assert idle_engine.history is not None
    persister = idle_engine.history._persister
    assert persister is not None
    persister.server_id = "the-old-primary"

    async def repaired() -> bool:
        return persister.server_changes == 1

    await async_poll(repaired, 10, "the persister to repair the changed server")
    assert await jobs.queue.redis.hget(key, "revision") == str(active.revision).encode()
    # The next change reads as newer than the stored version: it becomes the last one.
    assert await jobs.queue.reap_worker("w", max_attempts=5) == 1
    await stored_as(jobs, job.job_id, NEW)


async def shown_job(manager: JobManager, job_id: int) -> Job:
    """What readers (get, lists, a client's wait) are shown of one job."""
    (shown,) = (await manager.shown_jobs([job_id])).values()
    return shown


async def shows_done_once_stored(history: History, job_id: int) -> None:
    """Once the persister stored its end, the job reads `done`, after new and active."""
    await history.persister.drain_new()
    shown = await shown_job(history.manager, job_id)
    assert (shown.status, shown.result) == (DONE, "ok")
    assert await stored_statuses(history.manager, job_id) == [NEW, ACTIVE, DONE]


async def test_a_job_that_ran_before_its_hand_out_was_stored_never_shows_as_new_again(
    history: History,
) -> None:
    """A short job ends before its `active` version is stored (that version rides on the
    end's stream entry): seen `active` while it ran, it must not read `new` while its
    end is on its way, as if it had not run."""
    manager, queue = history.manager, history.queue
    job, lease = await history.hand_out(reported=False)
    running = await shown_job(manager, job.job_id)
    assert running.status is ACTIVE  # live in Redis; nothing stored since `new`
    assert await queue.complete_many([Completion(lease, DONE, "ok")]) == [True]
    assert await stored_statuses(manager, job.job_id) == [NEW]

    shown = await shown_job(manager, job.job_id)
    assert shown.status is ACTIVE
    # As it was while it ran: this attempt's start and worker, no end yet.
    assert (shown.attempts, shown.worker, shown.time_start) == (1, "w", running.time_start)
    assert (shown.result, shown.time_end, shown.revision) == ("", 0.0, running.revision)
    (listed,) = await manager.list_jobs(JobFilter())
    assert listed.status is ACTIVE

    await shows_done_once_stored(history, job.job_id)


def test_only_an_end_whose_run_the_history_lacks_is_shown_as_it_ran() -> None:
    def job(status: JobStatus, attempts: int, start: float) -> Job:
        return Job(1, "t", "!!core.echo\n", status=status, attempts=attempts, time_start=start)

    # Ran before its hand-out was stored; a retry's second attempt likewise.
    assert _stored_before_its_run(job(NEW, 0, 0.0), job(DONE, 1, 5.0))
    assert _stored_before_its_run(job(JobStatus.SCHEDULED, 1, 5.0), job(DONE, 2, 9.0))
    # Its `active` version is stored; or it ended without a run: cancelled while queued
    # or waiting for its retry, or failed with its parent.
    assert not _stored_before_its_run(job(ACTIVE, 1, 5.0), job(DONE, 1, 5.0))
    assert not _stored_before_its_run(job(NEW, 0, 0.0), job(ERROR, 0, 0.0))
    assert not _stored_before_its_run(job(JobStatus.SCHEDULED, 1, 5.0), job(ERROR, 1, 5.0))


async def test_an_end_not_yet_stored_is_not_shown_as_an_end(history: History) -> None:
    """Readers (get, lists, a client's wait) see `done` only once it is in the history."""
    manager, queue = history.manager, history.queue
    job, lease = await history.hand_out()
    await history.persister.drain_new()  # the hand-out is stored: the last version is active
    assert await queue.complete_many([Completion(lease, DONE, "ok")]) == [True]
    live = await queue.get_live(job.job_id)
    assert live is not None
    assert live.status is DONE

    shown = await shown_job(manager, job.job_id)
    assert shown.status is ACTIVE
    (listed,) = await manager.list_jobs(JobFilter())
    assert listed.status is ACTIVE

    await shows_done_once_stored(history, job.job_id)


@pytest.mark.parametrize("racing", [False, True], ids=["ended-before", "ends-meanwhile"])
async def test_a_cancel_leaves_the_end_of_a_run_alone(
    history: History, monkeypatch: pytest.MonkeyPatch, racing: bool
) -> None:
    """The run's end may still be on its way to the history, or come between the cancel's
    read of the job and its change of the hash: either way it is the one end."""
    manager, queue = history.manager, history.queue
    job, lease = await history.hand_out()

    async def end_run() -> None:
        assert await queue.complete_many([Completion(lease, DONE, "ok")]) == [True]

    if racing:
        read = manager.get_job

        async def read_then_end(job_id: int) -> Job:
            seen = await read(job_id)
            await end_run()
            return seen

        monkeypatch.setattr(manager, "get_job", read_then_end)
    else:
        await end_run()
    with pytest.raises(JobError) as refused:
        await manager.cancel_job(job.job_id)
    assert refused.value.kind == "ended"
    await history.persister.drain_new()
    assert await stored_statuses(manager, job.job_id) == [NEW, ACTIVE, DONE]
    assert (await manager.stored_job(job.job_id)).result == "ok"
