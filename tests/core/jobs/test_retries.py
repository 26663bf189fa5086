"""Retries with backoff, RetryLater and NoRetry, and dead letters: real engine, real valkey."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.api import JobFilter, JobView
from core.config import Config, QueueConfig
from core.engine import Engine
from core.jobs.model import Job
from core.jobs.retry import backoff_delay, should_retry
from tests.core.jobs.test_scheduled import STAMP_SLACK
from tests.helpers import running_watchdog, wait_job_ended


async def fail_first(
    engine: Engine, folder: Path, times: int, topic: str = "retry", **retry: Any
) -> JobView:
    """Submit a job whose first `times` attempts fail (counted in `folder`), with `retry`."""
    params = f"!!flaky.fail_first times:{times} folder:'{folder}'\n"
    return await engine.api.submit(params, topic=topic, **retry)


def statuses(history: list[JobView]) -> list[str]:
    return [v.status for v in history]


async def test_fails_twice_then_succeeds_with_exponential_backoff(
    flaky_engine: Engine, short_tmp: Path
) -> None:
    api = flaky_engine.api
    view = await fail_first(
        flaky_engine,
        short_tmp,
        2,
        retries=3,
        backoff="exponential",
        backoff_base=0.2,
        backoff_max=5.0,
    )
    done = await wait_job_ended(flaky_engine, view.job_id, 20)
    assert done.status == "done", done.error
    history = await api.history(view.job_id)
    assert statuses(history) == [
        "new", "active", "scheduled", "active", "scheduled", "active", "done"
    ]  # fmt: skip
    first, second = history[2], history[4]
    for attempt, (failed, rerun) in enumerate([(first, history[3]), (second, history[5])], 1):
        # Each failed attempt is in the history with its error and the time of the next.
        assert failed.error_kind == "failed"
        assert f"attempt {attempt} fails" in failed.error
        assert failed.run_at >= failed.time_end
        # Full jitter: the wait is at most base * 2**(attempt-1), and never cut short.
        assert failed.run_at - failed.time_end <= 0.2 * 2 ** (attempt - 1) + 0.01
        assert rerun.time_start >= failed.run_at - STAMP_SLACK
        assert rerun.attempts == attempt + 1
    assert done.attempts == 3


async def test_fixed_backoff_gaps_and_retry_later(flaky_engine: Engine, short_tmp: Path) -> None:
    api = flaky_engine.api
    fixed = await fail_first(
        flaky_engine, short_tmp, 1, retries=2, backoff="fixed", backoff_base=0.3
    )
    later = await api.submit(
        f"!!flaky.later seconds:0.4 folder:'{short_tmp}'\n", topic="retry", retries=1
    )
    child = await api.submit(
        f"!!flaky.later_in_child seconds:0.2 folder:'{short_tmp}'\n", topic="retry", retries=1
    )
    for view, gap in ((fixed, 0.3), (later, 0.4), (child, 0.2)):
        done = await wait_job_ended(flaky_engine, view.job_id, 20)
        assert done.status == "done", done.error
        history = await api.history(view.job_id)
        assert statuses(history) == ["new", "active", "scheduled", "active", "done"]
        assert history[2].run_at - history[2].time_end == pytest.approx(gap, abs=0.01)
        assert history[3].time_start >= history[2].run_at - STAMP_SLACK


async def test_no_retry_and_cancel_are_never_retried(flaky_engine: Engine) -> None:
    api = flaky_engine.api
    view = await api.submit("!!flaky.never\n", topic="retry", retries=5)
    ended = await wait_job_ended(flaky_engine, view.job_id, 20)
    assert ended.status == "error"
    assert ended.attempts == 1
    assert ended.dead
    waiting = await api.submit("!!fake.return_success\n", topic="retry", retries=5, delay=60)
    assert waiting.status == "scheduled"
    cancelled = await api.cancel(waiting.job_id)
    assert cancelled.error_kind == "cancelled"
    assert not cancelled.dead
    assert [v.job_id for v in await api.dead()] == [view.job_id]
    # Counted for /metrics: one dead letter; neither NoRetry nor a cancel is a retry.
    assert (api.health().job_retries, api.health().dead_letters) == (0, 1)


async def test_last_attempt_makes_a_dead_letter_and_bulk_requeue_revives_it(
    flaky_engine: Engine, short_tmp: Path
) -> None:
    api = flaky_engine.api
    views = [
        await fail_first(flaky_engine, short_tmp, 2, topic="dlq", retries=1, backoff_base=0.05)
        for _ in range(3)
    ]
    for view in views:
        ended = await wait_job_ended(flaky_engine, view.job_id, 20)
        assert ended.status == "error"
        assert ended.dead
        assert ended.attempts == 2
        history = await api.history(view.job_id)
        assert statuses(history) == ["new", "active", "scheduled", "active", "error"]
        # Every attempt's error stays visible in the history.
        assert "attempt 1 fails" in history[2].error
        assert "attempt 2 fails" in history[4].error
    dead = await api.dead(JobFilter(topic="dlq"))
    assert sorted(v.job_id for v in dead) == sorted(v.job_id for v in views)
    assert (api.health().job_retries, api.health().dead_letters) == (3, 3)
    back = await api.requeue_many(JobFilter(dead=True, topic="dlq"))
    assert sorted(v.job_id for v in back) == sorted(v.job_id for v in views)
    for view in views:
        done = await wait_job_ended(flaky_engine, view.job_id, 20)
        assert done.status == "done", done.error
    assert await api.dead(JobFilter(topic="dlq")) == []
    # A requeue and a success are neither: the counts stand.
    assert (api.health().job_retries, api.health().dead_letters) == (3, 3)


async def test_another_workers_retries_and_dead_letters_are_counted(idle_engine: Engine) -> None:
    """The engine counts what it persists, so a worker elsewhere (no slots here) counts too."""
    engine = idle_engine
    assert engine.api.health().slots == 0
    async with running_watchdog(engine, 1):
        view = await engine.api.submit(
            "!!fake.return_error message:'mailbox full'\n",
            topic="remote",
            retries=1,
            backoff_base=0.05,
        )
        ended = await wait_job_ended(engine, view.job_id, 20)
    assert ended.dead
    assert (engine.api.health().job_retries, engine.api.health().dead_letters) == (1, 1)


async def test_the_queue_default_policy_is_resolved_at_submit(engine_config: Config) -> None:
    config = replace(
        engine_config,
        enable_webdav=False,
        enable_ui=False,
        queues={"default/mail": QueueConfig(retries=2, backoff="exponential", backoff_max=9.0)},
    )
    async with Engine(config) as engine:
        api = engine.api
        queued = await api.submit("!!fake.return_success\n", topic="mail")
        assert (queued.retries, queued.backoff, queued.backoff_max) == (2, "exponential", 9.0)
        own = await api.submit("!!fake.return_success\n", topic="mail", retries=0)
        assert own.retries == 0
        other = await api.submit("!!fake.return_success\n", topic="other")
        assert (other.retries, other.backoff) == (0, "fixed")


def test_backoff_delays_and_retry_decisions() -> None:
    job = Job(job_id=1, topic="t", params="", retries=2, backoff_base=0.5, backoff_max=4.0)
    assert backoff_delay(job, 1) == backoff_delay(job, 7) == 0.5  # fixed
    job = replace(job, backoff="exponential")
    rand = random.Random(3)
    for attempt in range(1, 80):
        cap = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert 0.0 <= backoff_delay(job, attempt, rand=rand) <= cap
    assert should_retry(replace(job, attempts=2), "failed")
    assert not should_retry(replace(job, attempts=3), "failed")
    assert not should_retry(replace(job, attempts=1), "cancelled")
    assert not should_retry(replace(job, attempts=1, retry_on="timeout"), "failed")
