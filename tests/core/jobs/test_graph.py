"""Unique jobs and job dependencies: claims, release, cascades, graphs; real engine, valkey."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.api import JobRefused, JobSpec, JobView
from core.engine import Engine
from core.jobs import JobStatus, keys
from core.jobs.graph import MAX_GRAPH_BYTES, graph_specs
from core.jobs.manager import JobError, _batch_parents
from tests.core.jobs.test_retries import fail_first
from tests.core.jobs.test_scheduled import STAMP_SLACK
from tests.helpers import async_poll, running_watchdog, wait_job_ended, wait_jobs_ended

ROOT = Path(__file__).resolve().parents[3]
OK = "!!fake.return_success\n"
FAIL = "!!fake.return_error message:'on purpose'\n"
SLOW = "!!fake.sleep seconds:0.3\n"

DIAMOND = """
!!job.define name:a topic:graph
!!fake.sleep seconds:0.1

!!job.define name:b topic:graph after:a
!!fake.sleep seconds:0.1

!!job.define name:c topic:graph after:a
{c}

!!job.define name:d topic:graph after:'b, c'
!!fake.return_success message:last
"""


async def test_a_held_unique_key_answers_with_the_holder_then_is_released(engine: Engine) -> None:
    api = engine.api
    first = await api.submit(SLOW, topic="uniq", unique_key="report:42")
    again = await api.submit(OK, topic="uniq", unique_key="report:42")
    assert not first.duplicate
    assert again.duplicate
    assert again.job_id == first.job_id
    # Another topic is another key space.
    other = await api.submit(OK, topic="uniq2", unique_key="report:42")
    assert not other.duplicate
    await wait_jobs_ended(engine, [first.job_id, other.job_id])
    # Ended: the key is free, a new submit makes a new job.
    after = await api.submit(OK, topic="uniq", unique_key="report:42")
    assert not after.duplicate
    assert after.job_id != first.job_id
    assert after.unique_key == "report:42"


async def test_unique_for_keeps_the_key_after_the_end(engine: Engine) -> None:
    api = engine.api
    first = await api.submit(OK, topic="debounce", unique_key="k", unique_for=60)
    await wait_job_ended(engine, first.job_id)
    again = await api.submit(OK, topic="debounce", unique_key="k", unique_for=60)
    assert again.duplicate
    assert again.job_id == first.job_id
    assert again.status == "done"
    redis = engine.redis.loop_client()
    try:
        ttl = await redis.pttl(keys.unique_claim_key("default", "debounce", "k"))
    finally:
        await redis.aclose()
    assert 0 < ttl <= 60_000


async def test_same_key_twice_in_one_batch_is_one_job(engine: Engine) -> None:
    views = await engine.api.submit_many(
        [
            JobSpec(SLOW, topic="batchuniq", unique_key="x"),
            JobSpec(OK, topic="batchuniq"),
            JobSpec(OK, topic="batchuniq", unique_key="x"),
        ]
    )
    assert views[0].job_id == views[2].job_id
    assert [v.duplicate for v in views] == [False, False, True]
    assert views[1].job_id != views[0].job_id


async def test_bad_unique_fields_are_refused(engine: Engine) -> None:
    api = engine.api
    for key in ("has space", "x" * 201, "ünï"):
        with pytest.raises(JobRefused, match="unique_key"):
            await api.submit(OK, topic="t", unique_key=key)
    with pytest.raises(JobRefused, match="unique_for needs"):
        await api.submit(OK, topic="t", unique_for=5)


async def test_a_stale_placeholder_expires_and_a_stale_holder_is_replaced(engine: Engine) -> None:
    redis = engine.redis.loop_client()
    claim = keys.unique_claim_key("default", "stale", "k")
    try:
        # A submitter that died between its claim and its write: the key is free once
        # its placeholder expires, never stuck.
        await redis.set(claim, "pending:dead", px=200)
        view = await engine.api.submit(OK, topic="stale", unique_key="k")
        assert not view.duplicate
        await wait_job_ended(engine, view.job_id)
        # An engine that died between a job's end and giving its key up left the id.
        await redis.set(claim, str(view.job_id))
        fresh = await engine.api.submit(OK, topic="stale", unique_key="k")
        assert not fresh.duplicate
        assert await redis.get(claim) == str(fresh.job_id).encode()
    finally:
        await redis.aclose()


async def test_diamond_runs_in_order(engine: Engine) -> None:
    views = await engine.api.submit_graph(DIAMOND.format(c="!!fake.sleep seconds:0.05"))
    a, b, c, d = views
    assert [v.name for v in views] == ["a", "b", "c", "d"]
    assert a.status == "new"
    assert (b.status, b.depends_on, b.wait_for) == ("scheduled", (a.job_id,), (a.job_id,))
    assert d.depends_on == (b.job_id, c.job_id)
    await wait_jobs_ended(engine, [v.job_id for v in views], 20)
    ended = {v.name: await engine.api.job(v.job_id) for v in views}
    assert all(v.status == "done" for v in ended.values())
    for child, parents in (("b", "a"), ("c", "a"), ("d", "bc")):
        for parent in parents:
            assert ended[child].time_start >= ended[parent].time_end - STAMP_SLACK
    assert ended["d"].wait_for == ()


async def test_a_failed_parent_fails_its_dependants_transitively(engine: Engine) -> None:
    api = engine.api
    views = await api.submit_graph(DIAMOND.format(c=FAIL.strip()))
    c = views[2]
    await wait_jobs_ended(engine, [v.job_id for v in views], 20)
    ended = [await api.job(v.job_id) for v in views]
    assert [v.status for v in ended] == ["done", "done", "error", "error"]
    assert ended[3].error_kind == "dependency_failed"
    assert f"parent job {c.job_id}" in ended[3].error
    assert ended[3].attempts == 0
    # Transitively: a grandchild of the failed job fails as well.
    root = await api.submit(FAIL, topic="chain")
    child = await api.submit(OK, topic="chain", depends_on=[root.job_id])
    grandchild = await api.submit(OK, topic="chain", depends_on=[child.job_id])
    last = await wait_job_ended(engine, grandchild.job_id)
    assert (last.status, last.error_kind) == ("error", "dependency_failed")
    assert f"parent job {child.job_id}" in last.error
    assert last.dead


async def test_on_parent_error_run_runs_anyway(engine: Engine) -> None:
    api = engine.api
    parent = await api.submit(FAIL, topic="run")
    child = await api.submit(OK, topic="run", depends_on=[parent.job_id], on_parent_error="run")
    ended = await wait_job_ended(engine, child.job_id)
    assert ended.status == "done"
    assert ended.on_parent_error == "run"


async def test_parents_already_ended_count_at_submit(engine: Engine) -> None:
    api = engine.api
    done = await api.submit(OK, topic="late")
    failed = await api.submit(FAIL, topic="late")
    await wait_jobs_ended(engine, [done.job_id, failed.job_id])
    runs = await api.submit(OK, topic="late", depends_on=[done.job_id])
    assert (await wait_job_ended(engine, runs.job_id)).status == "done"
    fails = await api.submit(OK, topic="late", depends_on=[done.job_id, failed.job_id])
    ended = await wait_job_ended(engine, fails.job_id)
    assert ended.error_kind == "dependency_failed"


async def test_unknown_parents_and_cycles_are_refused(engine: Engine) -> None:
    api = engine.api
    with pytest.raises(JobRefused, match="no job with id 999999"):
        await api.submit(OK, topic="t", depends_on=[999_999])
    cycle = """
!!job.define name:fetch after:store
!!fake.return_success

!!job.define name:parse after:fetch
!!fake.return_success

!!job.define name:store after:parse
!!fake.return_success
"""
    with pytest.raises(JobRefused, match="cycle: fetch -> store -> parse -> fetch") as refused:
        await api.submit_graph(cycle)
    assert refused.value.index == 0
    with pytest.raises(JobRefused, match="no job of this batch is named 'nope'"):
        await api.submit_graph("!!job.define name:x after:nope\n!!fake.return_success\n")
    with pytest.raises(JobRefused, match=r"before any !!job\.define"):
        await api.submit_graph("!!fake.return_success\n")
    with pytest.raises(JobRefused, match="does not take 'colour'"):
        await api.submit_graph("!!job.define name:x colour:red\n!!fake.return_success\n")
    assert await api.jobs() == []


async def test_waiting_dependants_survive_a_flushall(idle_engine: Engine) -> None:
    """With no worker, a parent and two dependants wait; Redis loses everything."""
    engine = idle_engine
    views = await engine.api.submit_graph(
        "!!job.define name:p topic:flush\n!!fake.return_success\n\n"
        "!!job.define name:q topic:flush after:p\n!!fake.return_success\n\n"
        "!!job.define name:r topic:flush after:q unique_key:only-r\n!!fake.return_success\n"
    )
    p, q, r = views
    redis = engine.redis.loop_client()
    try:
        await redis.flushall()

        async def rebuilt() -> bool:
            children = await redis.smembers(keys.CHILDREN_PREFIX + str(p.job_id))
            return children == {str(q.job_id).encode()}

        await async_poll(rebuilt, 10, "the dependants wired again")
        assert (await engine.api.job(r.job_id)).wait_for == (q.job_id,)
        again = await engine.api.submit(OK, topic="flush", unique_key="only-r")
        assert again.job_id == r.job_id
    finally:
        await redis.aclose()
    async with running_watchdog(engine, 2):
        await wait_jobs_ended(engine, [v.job_id for v in views], 20)
    ended = [await engine.api.job(v.job_id) for v in views]
    assert [v.status for v in ended] == ["done", "done", "done"]


async def test_two_parents_ending_at_once_release_the_child_once(engine: Engine) -> None:
    api = engine.api
    for _ in range(5):
        parents = await api.submit_many([JobSpec(OK, topic="race") for _ in range(8)])
        child = await api.submit(OK, topic="race", depends_on=[v.job_id for v in parents])
        ended = await wait_job_ended(engine, child.job_id)
        assert ended.status == "done"
        history = await api.history(child.job_id)
        assert [v.status for v in history].count("active") == 1


def test_the_graph_of_the_docs_parses_into_its_jobs() -> None:
    doc = (ROOT / "docs" / "heroscript.md").read_text(encoding="utf-8")
    text = doc.split("## Job graphs", 1)[1].split("```", 2)[1]
    specs = graph_specs(text)
    assert [(s.name, s.depends_on) for s in specs] == [
        ("fetch", ()), ("clean", ("fetch",)), ("stats", ("fetch",)),
        ("report", ("clean", "stats")), ("notify", ("report",)),
    ]  # fmt: skip
    assert specs[1].retries == 2
    assert specs[3].unique_key == "daily-report"
    assert (specs[4].params_type, specs[4].params) == ("rhaiscript", 'notify("report finished")')
    assert specs[4].on_parent_error == "run"
    assert specs[0].params.startswith("!!http.get url:")


def test_graph_text_is_measured_before_it_is_parsed() -> None:
    huge = "!!job.define name:x\n!!core.echo message:'" + "x" * MAX_GRAPH_BYTES + "'\n"
    with pytest.raises(JobError, match="limit is 1,048,576 bytes"):
        graph_specs(huge)
    with pytest.raises(JobError, match=r"line 2: job 'x': .*retries"):
        graph_specs("!!job.define name:x\n    retries:many\n!!core.echo\n")
    with pytest.raises(JobError, match="both params"):
        graph_specs("!!job.define name:x params:'!!core.echo'\n!!core.echo\n")


def test_a_long_cycle_is_found_and_named_in_order() -> None:
    specs = [JobSpec(OK, name=f"j{i}", depends_on=(f"j{(i + 1) % 50}",)) for i in range(50)]
    with pytest.raises(JobError) as refused:
        _batch_parents(specs)
    names = str(refused.value).split("cycle: ", 1)[1].split(" -> ")
    assert len(names) == 51
    assert names[0] == names[-1]
    acyclic = [JobSpec(OK, name=f"j{i}", depends_on=(f"j{i + 1}",)) for i in range(49)]
    assert len(_batch_parents([*acyclic, JobSpec(OK, name="j49")])) == 50


async def test_only_a_final_error_fails_dependants_and_a_cancelled_one_stays_so(
    flaky_engine: Engine, short_tmp: Path
) -> None:
    api = flaky_engine.api
    # Fails its first attempt, then succeeds on its retry: the dependant runs.
    retried = await fail_first(flaky_engine, short_tmp, 1, "final", retries=1, backoff_base=0.05)
    runs = await api.submit(OK, topic="final", depends_on=[retried.job_id])
    # Fails both attempts: the dependant fails only once the last one has.
    dead = await fail_first(flaky_engine, short_tmp, 2, "final", retries=1, backoff_base=0.05)
    fails = await api.submit(OK, topic="final", depends_on=[dead.job_id])
    assert (await wait_job_ended(flaky_engine, runs.job_id, 20)).status == "done"
    failed = await wait_job_ended(flaky_engine, fails.job_id, 20)
    assert failed.error_kind == "dependency_failed"
    assert (await api.job(dead.job_id)).attempts == 2
    assert [v.status for v in await api.history(retried.job_id)].count("scheduled") == 1
    # A dependant cancelled while it waits stays cancelled when its parent ends.
    slow = await api.submit(SLOW, topic="final")
    waiting = await api.submit(OK, topic="final", depends_on=[slow.job_id])
    cancelled = await api.cancel(waiting.job_id)
    assert cancelled.error_kind == "cancelled"
    await wait_jobs_ended(flaky_engine, [slow.job_id, waiting.job_id])
    assert [v.status for v in await api.history(waiting.job_id)] == ["scheduled", "error"]


async def churn(engine: Engine, rounds: int, per_round: int) -> None:
    """Submit one key over and over while its holders run and end: never two at once."""
    api = engine.api
    answers = []
    for _ in range(rounds):
        answers += await asyncio.gather(
            *(api.submit(OK, topic="churn", unique_key="k") for _ in range(per_round))
        )
    made = sorted({v.job_id for v in answers})
    print(f"{len(made)} holders in turn for {len(answers)} submits")
    assert sum(not v.duplicate for v in answers) == len(made)
    await wait_jobs_ended(engine, made, 30)
    ended = [await api.job(job_id) for job_id in made]
    assert all(v.status == "done" for v in ended)
    # A new holder is made only after the last one ended and gave the key up.
    for before, after in itertools.pairwise(ended):
        assert after.time_start >= before.time_end


async def test_a_key_submitted_while_its_holders_end_has_one_holder_at_a_time(
    engine: Engine,
) -> None:
    await churn(engine, rounds=10, per_round=20)


@pytest.mark.slow
async def test_a_key_churned_for_long_has_one_holder_at_a_time(engine: Engine) -> None:
    await churn(engine, rounds=300, per_round=20)


async def test_an_end_stored_before_a_crash_still_releases_its_dependants(
    idle_engine: Engine,
) -> None:
    """The engine died between a parent's OurDB write and its Redis step: redelivery runs it."""
    manager = idle_engine.jobs
    parent, child = await idle_engine.api.submit_graph(
        "!!job.define name:p topic:crash unique_key:p\n!!fake.return_success\n\n"
        "!!job.define name:c topic:crash after:p\n!!fake.return_success\n"
    )
    job = await manager.get_job(parent.job_id)
    ended = replace(job, status=JobStatus.DONE, result="ok", time_end=time.time())
    redis = idle_engine.redis.loop_client()
    try:
        await redis.hset(keys.job_key("default", "crash", parent.job_id), "status", "done")
        await manager.db.set(ended.to_json(), parent.job_id)  # stored, then the crash
        await manager.persist([ended], skip_duplicates=True)  # the version delivered again
        released = await manager.get_job(child.job_id)
        assert (released.status, released.wait_for) == (JobStatus.NEW, "")
        assert await redis.get(keys.unique_claim_key("default", "crash", "p")) is None
        # Run once more (a second redelivery), nothing changes.
        await manager.persist([ended], skip_duplicates=True)
        queued = await redis.lrange(keys.queue_key("default", "crash"), 0, -1)
        assert queued.count(str(child.job_id).encode()) == 1
    finally:
        await redis.aclose()


async def test_a_requeued_job_holds_its_unique_key_again(engine: Engine) -> None:
    api = engine.api
    first = await api.submit(OK, topic="requniq", unique_key="k", unique_for=60)
    await wait_job_ended(engine, first.job_id)
    await api.pause_queue("default", "requniq")
    try:
        again = await api.requeue(first.job_id)
        assert again.status == "new"
        # Live again: a submit of its key answers with it, not with a new job.
        same = await api.submit(OK, topic="requniq", unique_key="k")
        assert (same.duplicate, same.job_id) == (True, first.job_id)
        redis = engine.redis.loop_client()
        try:
            claim = keys.unique_claim_key("default", "requniq", "k")
            assert await redis.pttl(claim) == -1  # held while it is live, not for 60 s
        finally:
            await redis.aclose()
    finally:
        await api.resume_queue("default", "requniq")
    await wait_job_ended(engine, first.job_id)


async def test_a_requeue_is_refused_while_another_job_holds_the_key(engine: Engine) -> None:
    api = engine.api
    first = await api.submit(OK, topic="requniq2", unique_key="k")
    await wait_job_ended(engine, first.job_id)
    await api.pause_queue("default", "requniq2")
    try:
        second = await api.submit(OK, topic="requniq2", unique_key="k")
        assert not second.duplicate
        with pytest.raises(JobRefused, match=f"unique key 'k' is held by job {second.job_id}"):
            await api.requeue(first.job_id)
        assert (await api.job(first.job_id)).status == "done"
    finally:
        await api.resume_queue("default", "requniq2")


async def delayed_dependant(
    engine: Engine, parent_params: str, topic: str, delay: float
) -> tuple[JobView, JobView]:
    """A parent job, and a child that waits for it and for `delay` seconds."""
    parent = await engine.api.submit(parent_params, topic=topic)
    child = await engine.api.submit(OK, topic=topic, depends_on=[parent.job_id], delay=delay)
    return parent, child


async def test_a_dependant_with_a_delay_waits_for_its_parents_and_its_time(
    engine: Engine,
) -> None:
    api = engine.api
    parent, child = await delayed_dependant(engine, OK, "later", 60)
    assert (child.status, child.wait_for) == ("scheduled", (parent.job_id,))
    await wait_job_ended(engine, parent.job_id)
    # The parent is done: the child now waits for its own time only, in the scheduled set.
    waiting = await api.job(child.job_id)
    assert (waiting.status, waiting.wait_for, waiting.run_at) == ("scheduled", (), child.run_at)
    redis = engine.redis.loop_client()
    try:
        assert await redis.zscore(keys.SCHEDULED, str(child.job_id)) == child.run_at
    finally:
        await redis.aclose()
    await api.cancel(child.job_id)


async def test_a_dependant_whose_time_has_passed_runs_when_its_parent_ends(
    engine: Engine,
) -> None:
    api = engine.api
    parent, child = await delayed_dependant(engine, SLOW, "later2", 0.05)
    ended = await wait_job_ended(engine, child.job_id)
    assert ended.status == "done"
    parent_end = (await api.job(parent.job_id)).time_end
    assert ended.time_start >= parent_end
