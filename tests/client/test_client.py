"""heroagent.Client and AsyncClient against a real served engine: jobs, waits, typed errors."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from core.config import Config
from core.events.bus import EventBus
from core.redis_server.service import RedisService
from heroagent import (
    AsyncClient,
    Client,
    EngineUnreachable,
    JobEnded,
    JobFailed,
    JobFilter,
    JobNotEnded,
    JobNotFound,
    JobRefused,
    JobSpec,
    WaitTimeout,
)
from tests.client.conftest import ROOT
from tests.core.test_serve import Serve
from tests.helpers import ValkeyProcess, async_poll, free_port, wait_for


def test_submit_wait_and_result(config: Config) -> None:
    with Client.from_config(config) as client:
        job = client.submit("!!core.echo message:hello\n", topic="demo", log=True)
        assert (job.status, job.queue) == ("new", "default/demo")
        result = client.result(job.job_id, timeout=30)
        assert json.loads(result)[0]["result"] == "hello"
        ended = client.wait(job.job_id, timeout=30)
        assert ended.status == "done"
        assert "hello" in ended.log_lines
        assert [v.status for v in client.history(job.job_id)] == ["new", "active", "done"]
        listed = client.jobs(JobFilter(topic="demo", status="done"), limit=10)
        assert job.job_id in [v.job_id for v in listed]
        # The time bounds reach the engine's index too.
        assert client.jobs(JobFilter(topic="demo", since=job.time_scheduled + 3600)) == []
        assert client.jobs(JobFilter(topic="demo", until=job.time_scheduled + 3600))


def test_typed_errors(config: Config) -> None:
    with Client.from_config(config) as client:
        with pytest.raises(JobNotFound, match="no job with id 424242"):
            client.get(424242)
        with pytest.raises(JobRefused) as refused:
            client.submit("!!a.b.c x:1\n")
        assert (refused.value.line, refused.value.col) == (1, 3)
        assert str(refused.value).startswith("line 1, col 3:")

        failing = client.submit("!!fake.return_error message:boom\n")
        with pytest.raises(JobFailed, match="boom") as failed:
            client.result(failing.job_id, timeout=30)
        assert failed.value.job.status == "error"
        with pytest.raises(JobEnded):
            client.cancel(failing.job_id)

        client.pause("default", "held")
        try:
            held = client.submit("!!core.echo\n", topic="held")
            with pytest.raises(JobNotEnded):
                client.requeue(held.job_id)
            with pytest.raises(WaitTimeout) as late:
                client.wait(held.job_id, timeout=0.5)
            assert late.value.pending == (held.job_id,)
            assert isinstance(late.value, TimeoutError)
            cancelled = client.cancel(held.job_id)
            assert (cancelled.status, cancelled.error) == ("error", "cancelled")
        finally:
            client.resume("default", "held")


def test_a_number_json_cannot_carry_is_refused_by_name_before_sending(config: Config) -> None:
    with Client.from_config(config) as client:
        before = len(client.jobs())
        with pytest.raises(ValueError, match="timeout must be a finite number, got inf"):
            client.submit("!!core.echo\n", timeout=float("inf"))
        with pytest.raises(ValueError, match="delay must be a finite number, got nan"):
            client.submit("!!core.echo\n", delay=float("nan"))
        assert len(client.jobs()) == before


def test_a_bad_item_in_a_batch_creates_none(config: Config) -> None:
    with Client.from_config(config) as client:
        before = [v.job_id for v in client.jobs(JobFilter(topic="batch"), limit=1000)]
        items = [JobSpec(f"!!core.echo message:{i}\n", topic="batch") for i in range(5)]
        items[3] = JobSpec("!!a.b.c x:1\n", topic="batch")
        with pytest.raises(JobRefused) as refused:
            client.submit_many(items)
        assert refused.value.index == 3
        assert str(refused.value).startswith("item 3: line 1, col 3:")
        assert (refused.value.line, refused.value.col) == (1, 3)
        # A malformed item (not a string) is named by its index as well.
        with pytest.raises(JobRefused, match="item 1: params must be a string"):
            client.submit_many(["!!core.echo\n", JobSpec(5, topic="batch")])  # type: ignore[arg-type]
        with pytest.raises(JobRefused, match="item 0: topic"):
            client.submit_many(["!!core.echo\n"], topic="no spaces")
        after = [v.job_id for v in client.jobs(JobFilter(topic="batch"), limit=1000)]
        assert after == before

        made = client.submit_many([*(f"!!core.echo message:{i}\n" for i in range(3))])
        assert [v.params for v in made] == [f"!!core.echo message:{i}\n" for i in range(3)]
        assert [v.job_id for v in made] == sorted(v.job_id for v in made)
        done = client.wait_many([v.job_id for v in made], timeout=30)
        assert [v.status for v in done] == ["done"] * 3
        assert client.submit_many([]) == []


def test_a_batch_over_the_limit_is_refused(config: Config) -> None:
    with Client.from_config(config) as client:
        with pytest.raises(JobRefused, match="at most 1000 jobs, got 1001"):
            client.submit_many(["!!core.echo\n"] * 1001)
        with pytest.raises(JobRefused, match="the limit is 1048576"):
            client.submit_many(["!!core.echo message:" + "x" * 40_000 + "\n"] * 30)


# The name the waiting client's connections carry, so the server counts its commands apart.
WAITER = "wait-under-test"


def _waiter_url(served: Serve, name: str) -> str:
    password = (served.data / "redis" / "password").read_text().strip()
    return f"redis://:{password}@127.0.0.1:{served.port}/0?client_name={name}"


def _waiter_commands(
    connections: list[dict[str, str]], name: str, *, requests: int = 0
) -> dict[str, str]:
    """Commands run so far on each of the waiting client's connections (from CLIENT LIST).

    With `requests`, empty until it has subscribed and one connection has had that many
    requests answered (after AUTH and CLIENT SETNAME, each is an RPUSH and a BLPOP that
    has returned): a `submit --wait` makes two, the submit and the read of its job.
    """
    mine = [c for c in connections if c["name"] == name]
    if requests and not (
        any(c["sub"] == "1" for c in mine)
        and any(
            c["cmd"] == "blpop" and "b" not in c["flags"] and int(c["tot-cmds"]) >= 2 + 2 * requests
            for c in mine
        )
    ):
        return {}
    return {c["id"]: c["tot-cmds"] for c in mine}


async def test_wait_returns_on_the_event_without_asking_again(
    config: Config, served: Serve
) -> None:
    redis = RedisService(config, EventBus()).loop_client()
    url = _waiter_url(served, WAITER)
    async with AsyncClient.from_config(config) as client, AsyncClient(url=url) as waiter:
        await client.pause("default", "evented")
        try:
            job = await client.submit("!!core.echo\n", topic="evented")
            waiting = asyncio.create_task(waiter.wait(job.job_id, timeout=30))

            async def waiter_commands(*, read: bool = False) -> dict[str, str]:
                return _waiter_commands(await redis.client_list(), WAITER, requests=int(read))

            # Only the waiting client's own connections are counted (the engine pushes
            # to its lists all along); a new connection or any command shows a poll.
            # The pause observes an absence, it waits for no state.
            before = await async_poll(
                lambda: waiter_commands(read=True), 10, "the wait to subscribe and read"
            )
            await asyncio.sleep(1.0)
            assert await waiter_commands() == before
            assert not waiting.done()
        finally:
            await client.resume("default", "evented")
        ended = await waiting
        assert ended.status == "done"
    await redis.aclose()


def _modules_imported(importtime: str) -> set[str]:
    """The modules `python -X importtime` says it imported (its stderr)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


@pytest.mark.parametrize("how", ["client", "cli"])
def test_a_blocking_wait_returns_on_the_event_and_loads_no_asyncio(
    config: Config, served: Serve, how: str, tmp_path: Path
) -> None:
    # The blocking Client (and `heroagent submit --wait`, which uses it) waits on the
    # events channel as AsyncClient does, on plain sockets: no poll, no asyncio, and it
    # follows a connection that breaks.
    name, topic = f"blocking-{how}", f"evented-{how}"
    url = _waiter_url(served, name)
    admin = redis.Redis.from_url(url.partition("?")[0])
    with Client.from_config(config) as client:
        client.pause("default", topic)
        try:
            if how == "client":
                waiter = Client(url=url)
                job = client.submit("!!core.echo\n", topic=topic)
                pool = concurrent.futures.ThreadPoolExecutor(1)
                waiting = pool.submit(waiter.wait, job.job_id, 30)
            else:
                params = tmp_path / "job.hero"
                params.write_text("!!core.echo\n")
                cli = subprocess.Popen(
                    [sys.executable, "-X", "importtime", "-m", "heroagent_tui",
                     "--config", os.devnull, "--redis-url", url,
                     "submit", str(params), "-t", topic, "--wait", "--json"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                )  # fmt: skip
            requests = 1 if how == "client" else 2
            before = wait_for(
                lambda: _waiter_commands(admin.client_list(), name, requests=requests),
                30, "the wait to subscribe and read",
            )  # fmt: skip
            time.sleep(1.0)  # observes an absence: no command, no new connection
            assert _waiter_commands(admin.client_list(), name) == before
            # Its connections cut (a restart, a failover): it subscribes and reads again.
            for connection_id in before:
                admin.client_kill_filter(_id=connection_id)
            wait_for(
                lambda: set(_waiter_commands(admin.client_list(), name, requests=1)) - set(before),
                30, "the wait to subscribe again",
            )  # fmt: skip
        finally:
            client.resume("default", topic)
    if how == "client":
        assert waiting.result(60).status == "done"
        waiter.close()
        pool.shutdown()
    else:
        out, importtime = cli.communicate(timeout=60)
        assert cli.returncode == 0, importtime
        assert json.loads(out)["status"] == "done"
        imported = _modules_imported(importtime)
        assert "heroagent.resp_sync" in imported  # the probe saw the client's imports
        assert not {m for m in imported if m.split(".")[0] == "asyncio"}
    admin.close()


async def test_async_client_runs_calls_concurrently(config: Config) -> None:
    async with AsyncClient.from_config(config) as client:
        jobs = await asyncio.gather(
            *(client.submit(f"!!core.echo message:c{i}\n", topic="concurrent") for i in range(5))
        )
        results = await asyncio.gather(*(client.result(j.job_id, timeout=30) for j in jobs))
        assert [json.loads(r)[0]["result"] for r in results] == [f"c{i}" for i in range(5)]


async def test_closing_answers_the_submits_already_made_first(config: Config) -> None:
    client = AsyncClient.from_config(config)
    submits = [
        asyncio.create_task(client.submit(f"!!core.echo message:{i}\n", topic="closing"))
        for i in range(3)
    ]
    # One turn of the loop: each submit is queued and their sender made, not yet run.
    await asyncio.sleep(0)
    assert client._senders
    assert len(client._queued) == 3
    await client.aclose()
    assert not client._senders
    assert client._redis is None  # nothing reopened a connection after the close
    made = [task.result() for task in submits]  # each answered before aclose returned
    assert len({job.job_id for job in made}) == 3


def test_client_by_url(served: Serve) -> None:
    # The managed server asks for the password the engine keeps in its data dir.
    password = (served.data / "redis" / "password").read_text().strip()
    with Client(url=f"redis://:{password}@127.0.0.1:{served.port}") as client:
        job = client.submit("!!core.echo message:by-url\n")
        assert client.wait(job.job_id, timeout=30).status == "done"


def test_no_server_is_engine_unreachable() -> None:
    with Client(url=f"redis://127.0.0.1:{free_port()}") as client:
        with pytest.raises(EngineUnreachable, match="cannot reach the engine's Redis server"):
            client.get(1)
        with pytest.raises(EngineUnreachable):
            client.wait(1, timeout=5)


def test_a_server_without_an_engine_is_engine_unreachable(valkey: ValkeyProcess) -> None:
    with (
        Client(url=valkey.url, wait_seconds=0.3) as client,
        pytest.raises(EngineUnreachable, match=r"no engine answered within 0\.3 s"),
    ):
        client.submit("!!core.echo\n")
    # The request was taken back: no engine started later runs it.
    server = redis.Redis.from_url(valkey.url)
    try:
        assert server.llen("heroagent:requests") == 0
    finally:
        server.close()


def test_a_closed_client_refuses_calls(config: Config) -> None:
    client = Client.from_config(config)
    client.close()
    client.close()
    with pytest.raises(Exception, match="the client is closed"):
        client.get(1)


def test_delayed_retried_and_dead_jobs_through_the_client(config: Config) -> None:
    with Client.from_config(config) as client:
        later = client.submit("!!core.echo message:later\n", topic="timed", delay=0.3)
        assert later.status == "scheduled"
        assert later.run_at >= later.time_scheduled + 0.3
        ended = client.wait(later.job_id, timeout=30)
        assert ended.status == "done"
        assert ended.time_start >= later.run_at - 0.02  # stamped before its FETCH is sent
        failing = client.submit(
            "!!fake.return_error message:boom\n", topic="timed", retries=1, backoff_base=0.05
        )
        assert failing.retries == 1
        assert client.wait(failing.job_id, timeout=30).status == "error"
        steps = [v.status for v in client.history(failing.job_id)]
        assert steps == ["new", "active", "scheduled", "active", "error"]
        assert [v.job_id for v in client.dead(JobFilter(topic="timed"))] == [failing.job_id]
        back = client.requeue_many(JobFilter(dead=True, topic="timed"))
        assert [v.job_id for v in back] == [failing.job_id]
        with pytest.raises(JobRefused, match="backoff"):
            client.submit("!!core.echo message:x\n", backoff="sometimes")


def test_priority_and_limits_through_the_client(config: Config) -> None:
    with Client.from_config(config) as client:
        job = client.submit("!!core.echo\n", topic="client-prio", priority=4)
        assert job.priority == 4
        with pytest.raises(JobRefused, match="priority must be a whole number from 0 to 9"):
            client.submit("!!core.echo\n", topic="client-prio", priority=11)
        view = client.set_limits("default", "client-capped", max_active=3, rate="100/m")
        assert (view.name, view.max_active, view.rate) == ("default/client-capped", 3, "100/m")
        with pytest.raises(JobRefused, match="at least one start"):
            client.set_limits("default", "client-capped", rate="0/s")


async def test_limits_through_the_async_client(config: Config) -> None:
    async with AsyncClient.from_config(config) as aio:
        view = await aio.set_limits("default", "client-async", max_active=1)
        assert "default/client-async" in [v.name for v in await aio.limits()]
        assert view.max_active == 1
        await aio.set_limits("default", "client-async")
        assert "default/client-async" not in [v.name for v in await aio.limits()]
