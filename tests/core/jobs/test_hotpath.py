"""The worker's hot path: batched COMPLETE calls fenced per outcome, and inline jobs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.api import JobSpec
from core.config import Config
from core.engine import Engine
from core.heroscript import ActionContext, ActorRegistry, parse, run_playbook
from core.heroscript.inline import INLINE_STRIKES
from core.jobs import keys
from core.jobs.model import Job, JobStatus
from core.jobs.queue import Completion, JobQueue
from core.watchdog.processors import PLANS_KEPT
from core.watchdog.service import build_processors, build_registry
from tests.helpers import async_wait_for, running_watchdog, wait_job_ended, wait_jobs_ended


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


async def test_inline_jobs_run_on_the_loop_and_an_overrun_still_ends_in_a_timeout(
    flaky_engine: Engine,
) -> None:
    api = flaky_engine.api
    quick = [
        await api.submit("!!inline.where\n!!fake.return_success\n", topic="t") for _ in range(5)
    ]
    # It blocks the loop past its timeout: nothing can interrupt it, yet it is too late.
    late = await api.submit("!!inline.nap seconds:0.4\n", topic="t", timeout=0.1)
    for view in quick:
        done = await wait_job_ended(flaky_engine, view.job_id)
        assert done.status == "done", done.error
        assert json.loads(done.result)[0]["result"] == "MainThread"
    ended = await wait_job_ended(flaky_engine, late.job_id)
    assert (ended.status, ended.error_kind, ended.error) == (
        "error",
        "timeout",
        "timeout after 0.1s",
    )


async def test_an_inline_jobs_last_progress_is_on_its_final_version(
    flaky_engine: Engine,
) -> None:
    view = await flaky_engine.api.submit("!!inline.report\n", topic="t")
    ended = await wait_job_ended(flaky_engine, view.job_id)
    assert ended.status == "done", ended.error
    assert (ended.progress, ended.progress_message) == (1.0, "all done")


async def test_an_inline_action_that_keeps_holding_the_loop_goes_to_threads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ActorRegistry()
    registry.load_modules(["tests.core.jobs.inline_actors"])
    # Slow for the budget by far; the call after the last strike runs in a thread.
    script = "!!inline.nap seconds:0.01\n" * (INLINE_STRIKES + 1)
    with ThreadPoolExecutor(thread_name_prefix="action") as threads:
        result = await run_playbook(parse(script), registry, ActionContext(executor=threads))
    assert result.ok, result.error
    where = [r.result for r in result.results]
    assert where[:INLINE_STRIKES] == ["MainThread"] * INLINE_STRIKES
    assert where[INLINE_STRIKES].startswith("action")
    assert "inline action inline.nap held the event loop" in caplog.text
    assert registry.lookup("inline", "where").inline is not None
    budget = registry.lookup("inline", "nap").inline
    assert budget is not None
    assert not budget.allowed


async def test_a_worker_fetches_its_next_batch_while_the_last_report_is_on_its_way(
    idle_engine: Engine,
) -> None:
    jobs = idle_engine.jobs
    async with running_watchdog(idle_engine, 2) as dog:
        # The server takes no report until the gate opens: the first batch's COMPLETE
        # waits on the wire, the next batch's outcomes wait behind it.
        gate = asyncio.Event()
        complete_many = dog.queue.complete_many

        async def held(outcomes: Sequence[Completion]) -> list[bool]:
            await gate.wait()
            return await complete_many(outcomes)

        dog.queue.complete_many = held  # type: ignore[method-assign]  # the one call held back
        spec = JobSpec("!!fake.return_success\n", topic="pipelined")
        created = await jobs.create_jobs([spec] * 6)

        # Two slots, yet four jobs ran: the reports in flight held no slot, up to one
        # batch of them; beyond that they hold the slots, and the fetching stops.
        await async_wait_for(lambda: dog.reporting == 4, what="two batches run, unreported")
        assert dog.busy == 2
        waiting = await jobs.queue.redis.llen(keys.queue_key("default", "pipelined"))
        assert waiting == 2
        for job in created:
            stored = await jobs.stored_job(job.job_id)
            assert stored is not None
            assert not stored.status.ended

        gate.set()
        await wait_jobs_ended(idle_engine, [job.job_id for job in created])
        for job in created:
            stored = await jobs.stored_job(job.job_id)
            assert stored is not None
            assert stored.status is JobStatus.DONE
        assert dog.completed == 6


def test_jobs_of_one_script_share_its_parse_and_the_kept_plans_stay_bounded() -> None:
    config = Config()
    processors = build_processors(config, build_registry(config))
    script = "!!fake.return_success message:ok\n"
    first = processors.plan(Job(job_id=1, topic="hot", params=script))
    again = processors.plan(Job(job_id=2, topic="hot", params=script))
    assert first is not None
    assert again is first
    # A script that does not parse is left to the job's run, and not kept.
    assert processors.plan(Job(job_id=3, topic="hot", params="!!!!!!a.b")) is None
    for n in range(PLANS_KEPT + 10):
        other = f"!!fake.return_success message:m{n}\n"
        processors.plan(Job(job_id=4 + n, topic="hot", params=other))
    assert len(processors._plans) == PLANS_KEPT
    # The oldest went first; a script planned again is parsed afresh.
    assert script not in processors._plans
    assert processors.plan(Job(job_id=9, topic="hot", params=script)) is not first


async def test_jobs_sharing_a_parsed_script_each_get_their_own_outcome(engine: Engine) -> None:
    script = "!!core.echo message:same\n"
    jobs = [await engine.jobs.create_job("hot", script) for _ in range(20)]
    await wait_jobs_ended(engine, [job.job_id for job in jobs])
    ended = [await wait_job_ended(engine, job.job_id) for job in jobs]
    assert [(job.status, json.loads(job.result)[0]["result"]) for job in ended] == [
        ("done", "same")
    ] * 20
