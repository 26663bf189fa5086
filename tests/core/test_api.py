"""EngineAPI against a real engine: the views front ends get."""

from __future__ import annotations

import asyncio

import pytest

from core.api import EngineAPI
from core.engine import Engine
from core.jobs import JobError
from core.jobs.service import JobsService


async def wait_stored_end(api: EngineAPI, job_id: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not (await api.engine.jobs.stored_job(job_id)).status.ended:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)


async def test_submit_view_history_and_queues(engine: Engine) -> None:
    api = EngineAPI(engine)
    view = await api.submit("!!fake.return_success message:hi\n", topic="mail", job_timeout=5)
    assert (view.status, view.circle, view.topic, view.timeout) == ("new", "default", "mail", 5.0)
    await wait_stored_end(api, view.job_id)
    done = await api.job(view.job_id)
    assert done.ended
    assert done.duration is not None
    assert "session_key" not in done.to_dict()
    assert [v.status for v in await api.history(view.job_id)] == ["new", "active", "done"]
    assert [j.job_id for j in await api.jobs(topic="mail")] == [view.job_id]
    await api.pause_queue("default", "mail")
    (queue,) = [q for q in await api.queues() if q.name == "default/mail"]
    assert (queue.done, queue.paused) == (1, True)


async def test_refusals_and_registry(engine: Engine) -> None:
    api = EngineAPI(engine)
    with pytest.raises(JobError, match="line 1"):
        await api.submit("!!a.b.c x:1\n", topic="t")
    problems = api.validate("!!fake.return_succes message:x\n")
    assert problems
    assert "return_success" in problems[0].message
    assert api.validate("!!fake.return_success message:x\n") == []
    methods = {a.method: a for a in api.actions()}
    assert "fake.sleep" in methods
    assert "seconds" in methods["fake.sleep"].template
    answer = await api.rpc({"jsonrpc": "2.0", "id": 1, "method": "core.echo", "params": {}})
    assert answer["id"] == 1
    assert api.discover()["openrpc"].startswith("1.")


async def test_services_and_redis_info(engine: Engine) -> None:
    api = EngineAPI(engine)
    names = [s.name for s in api.services()]
    assert names[:1] == ["redis"]
    info = await api.redis_info()
    assert info.version.count(".") == 2
    assert info.clients >= 1


async def test_cancel_stops_a_job_running_here(engine: Engine) -> None:
    api = EngineAPI(engine)
    view = await api.submit("!!fake.sleep seconds:30\n", topic="long")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (await api.job(view.job_id)).status != "active":
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    cancelled = await api.cancel(view.job_id)
    assert (cancelled.status, cancelled.error) == ("error", "cancelled")
    service = engine.services["jobs"]
    assert isinstance(service, JobsService)
    assert service.watchdog is not None
    while view.job_id in service.watchdog.running:
        assert loop.time() < deadline, "the slot still runs the cancelled job"
        await asyncio.sleep(0.01)
    await wait_stored_end(api, view.job_id)
    history = [v.status for v in await api.history(view.job_id)]
    assert history == ["new", "active", "error"]
