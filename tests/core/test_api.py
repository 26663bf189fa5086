"""EngineAPI against a real engine: the views front ends get."""

from __future__ import annotations

import pytest

from core.api import JobFilter, JobNotFound, JobRefused, JobSpec, JobView, job_wire
from core.engine import Engine
from core.jobs import Job
from core.watchdog.service import WatchDogService
from tests.helpers import async_wait_for, wait_job_ended, wait_jobs_ended


def test_a_fresh_records_view_is_the_views_defaults() -> None:
    # JobView declares again the record's fields it shows (a frozen view cannot inherit a
    # mutable record's, and their orders differ): a record with its defaults must read as
    # the view with its own, so that neither side's defaults move alone.
    record = Job(job_id=1, topic="t", params="p")
    assert JobView.of(record) == JobView(1, "default", "t", "p", "heroscript", "new")


async def test_submit_view_history_and_queues(engine: Engine) -> None:
    api = engine.api
    view = await api.submit("!!fake.return_success message:hi\n", topic="mail", timeout=5)
    assert (view.status, view.circle, view.topic, view.timeout) == ("new", "default", "mail", 5.0)
    await wait_job_ended(engine, view.job_id)
    done = await api.job(view.job_id)
    assert done.ended
    assert done.duration is not None
    assert "session_key" not in job_wire(done)
    assert [v.status for v in await api.history(view.job_id)] == ["new", "active", "done"]
    assert [j.job_id for j in await api.jobs(JobFilter(topic="mail"))] == [view.job_id]
    await api.pause_queue("default", "mail")
    (queue,) = [q for q in await api.queues() if q.name == "default/mail"]
    assert (queue.done, queue.paused) == (1, True)


async def test_refusals_and_registry(engine: Engine) -> None:
    api = engine.api
    with pytest.raises(JobRefused, match="line 1") as refused:
        await api.submit("!!a.b.c x:1\n", topic="t")
    assert (refused.value.line, refused.value.col) == (1, 3)
    problems = await api.validate("!!fake.return_succes message:x\n")
    assert problems
    assert "return_success" in problems[0].message
    assert await api.validate("!!fake.return_success message:x\n") == []
    methods = {a.method: a for a in api.actions()}
    assert "fake.sleep" in methods
    assert "seconds" in methods["fake.sleep"].template
    answer = await api.rpc({"jsonrpc": "2.0", "id": 1, "method": "core.echo", "params": {}})
    assert answer["id"] == 1
    assert api.discover()["openrpc"].startswith("1.")


async def test_services_and_redis_info(engine: Engine) -> None:
    api = engine.api
    names = [s.name for s in api.services()]
    assert names[:1] == ["redis"]
    info = await api.redis_info()
    assert info.version.count(".") == 2
    assert info.clients >= 1


async def test_cancel_stops_a_job_running_here(engine: Engine) -> None:
    api = engine.api
    view = await api.submit("!!fake.sleep seconds:30\n", topic="long")
    assert isinstance(engine.watchdog, WatchDogService)
    dog = engine.watchdog.watchdog
    assert dog is not None
    await async_wait_for(lambda: view.job_id in dog.running, 10, "the job to run")
    cancelled = await api.cancel(view.job_id)
    assert (cancelled.status, cancelled.error) == ("error", "cancelled")
    await async_wait_for(lambda: view.job_id not in dog.running, 10, "the slot to let go")
    await wait_job_ended(engine, view.job_id)
    history = [v.status for v in await api.history(view.job_id)]
    assert history == ["new", "active", "error"]


async def test_submit_many_is_all_or_none_and_names_the_bad_item(engine: Engine) -> None:
    api = engine.api
    specs = [JobSpec(f"!!core.echo message:{i}\n", topic="many") for i in range(4)]
    bad = [*specs[:2], JobSpec("!!core.echo\n", topic="bad name"), specs[3]]
    with pytest.raises(JobRefused, match=r"^item 2: topic 'bad name' is not a valid name") as r:
        await api.submit_many(bad)
    assert r.value.index == 2
    # HeroScript problems keep their line, column and problems, under the item's index.
    script = [*specs[:3], JobSpec("!!core.echo\n!!a.b.c x:1\n", topic="many")]
    with pytest.raises(JobRefused, match=r"^item 3: line 2, col 3:") as r:
        await api.submit_many(script)
    assert (r.value.index, r.value.line, r.value.col) == (3, 2, 3)
    assert r.value.problems
    assert await api.jobs(JobFilter(topic="many")) == []

    views = await api.submit_many(specs)
    assert [v.params for v in views] == [s.params for s in specs]
    await wait_jobs_ended(engine, [v.job_id for v in views])
    found = await api.jobs_by_id([views[2].job_id, views[0].job_id])
    expected = [(views[2].job_id, "done"), (views[0].job_id, "done")]
    assert [(v.job_id, v.status) for v in found] == expected
    with pytest.raises(JobNotFound, match="no job with id 424242"):
        await api.jobs_by_id([views[0].job_id, 424242])
    with pytest.raises(JobRefused, match="at most 1000"):
        await api.submit_many([specs[0]] * 1001)
    assert await api.submit_many([]) == []
