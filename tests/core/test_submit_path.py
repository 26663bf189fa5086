"""The submit path: concurrent submits share a batch yet stay their own; batches all or none."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from core.api import (
    JobRefused,
    JobSpec,
    JobView,
    jobs_delta,
    spec_from_wire,
    views_delta,
    views_from_delta,
)
from core.engine import Engine
from core.heroscript import ActorRegistry
from core.jobs import keys
from core.jobs.model import ParamsType
from core.jobs.validation import InvalidParamsError, make_validator
from core.ourdb import AsyncOurDB
from core.remote import RequestError, RequestServer, call
from heroagent import AsyncClient
from heroagent.aio import COALESCE_BYTES
from heroagent.errors import typed_error
from heroagent.plans import _before_shared
from tests.helpers import async_poll


class CountingWrites:
    """The real OurDB, counting its durable writes (each one commit of its own)."""

    def __init__(self, db: AsyncOurDB) -> None:
        self.db = db
        self.writes = 0

    async def set_many(self, items: Iterable[Any]) -> list[int]:
        self.writes += 1
        return await self.db.set_many(items)

    def start_set_many(self, items: Iterable[Any]) -> asyncio.Future[list[int]]:
        self.writes += 1
        return self.db.start_set_many(items)

    def start_set_many_early(
        self, items: Iterable[Any]
    ) -> tuple[asyncio.Future[list[int]], asyncio.Future[list[int]]]:
        self.writes += 1
        return self.db.start_set_many_early(items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


async def test_concurrent_submits_share_one_write_and_each_gets_its_own_durable_job(
    engine: Engine,
) -> None:
    manager = engine.jobs
    counting = CountingWrites(manager.db)
    manager.db = counting  # type: ignore[assignment]  # the real db, its writes counted
    try:
        texts = [f"!!core.echo message:n{i}\n" for i in range(50)]
        views = await asyncio.gather(*(engine.api.submit(t, topic="shared") for t in texts))
    finally:
        manager.db = counting.db
    assert [v.params for v in views] == texts  # each caller has its own job
    assert len({v.job_id for v in views}) == 50
    assert counting.writes < 50  # they shared durable writes (one, when they came at once)
    stored = await asyncio.to_thread(manager.read_many, [v.job_id for v in views])
    assert [stored[v.job_id].params for v in views] == texts


async def test_a_refused_submit_among_concurrent_ones_is_refused_alone(engine: Engine) -> None:
    texts = [f"!!core.echo message:m{i}\n" for i in range(10)]
    texts.insert(4, "!!core.echo message:ok\n!!nope.nothing\n")
    outcomes = await asyncio.gather(
        *(engine.api.submit(t, topic="alone") for t in texts), return_exceptions=True
    )
    refused = outcomes.pop(4)
    assert isinstance(refused, JobRefused)
    assert refused.index is None  # not a batch item: the caller sent one job
    assert refused.line == 2
    assert all(isinstance(v, JobView) for v in outcomes)
    listed = await engine.api.jobs(limit=50)
    assert sorted(v.params for v in listed if v.topic == "alone") == sorted(texts[:4] + texts[5:])


async def test_a_bad_item_of_a_thousand_is_named_and_nothing_is_created(engine: Engine) -> None:
    redis = engine.redis.client()
    try:
        jobs = [{"params": "!!core.echo message:same\n", "topic": "thousand"}] * 1_000
        jobs = [*jobs[:637], {"params": "!!nope.nothing\n"}, *jobs[638:]]
        before = await engine.jobs.db.next_id()
        with pytest.raises(RequestError) as refused:
            await call(redis, "submit_many", {"jobs": jobs, "reply": "delta"})
        assert refused.value.reply["index"] == 637
        assert str(refused.value).startswith("item 637: line 1")
        assert await engine.jobs.db.next_id() == before
        assert await call(redis, "jobs", {"topic": "thousand"}) == []
    finally:
        await redis.aclose()


async def test_many_concurrent_callers_over_the_channel_each_get_their_own_reply(
    engine: Engine,
) -> None:
    redis = engine.redis.client(max_connections=200)
    try:
        texts = [f"!!core.echo message:c{i}\n" for i in range(100)]
        made = await asyncio.gather(
            *(call(redis, "submit", {"params": t, "topic": "callers"}) for t in texts)
        )
        assert [m["params"] for m in made] == texts
        ids = [m["job_id"] for m in made]
        current = await engine.api.jobs_by_id(ids)
        assert [v.params for v in current] == texts
    finally:
        await redis.aclose()


async def test_the_short_batch_reply_reads_back_as_the_full_one(engine: Engine) -> None:
    await engine.api.pause_queue("default", "delta")  # they stay as they were made
    redis = engine.redis.client()
    try:
        jobs: list[dict[str, Any]] = [
            {"params": "!!core.echo message:a\n", "topic": "delta"},
            {"params": "!!core.echo message:b\n", "topic": "delta", "priority": 7},
            {"params": "!!core.echo message:a\n", "topic": "delta", "delay": 3600},
            {"params": "!!core.echo message:u\n", "topic": "delta", "unique_key": "k1"},
            {"params": "!!core.echo message:v\n", "topic": "delta", "unique_key": "k1"},
        ]
        short = await call(redis, "submit_many", {"jobs": jobs, "reply": "delta"})
        views = views_from_delta(short)
        full = await engine.api.jobs_by_id([v.job_id for v in views])
        for view, now in zip(views, full, strict=True):
            # Only a submit's answer says `duplicate`; the rest is the job as stored.
            assert dataclasses.replace(view, duplicate=False) == now
        assert [v.duplicate for v in views] == [False, False, False, False, True]
        assert (views[1].priority, views[2].status) == (7, "scheduled")
        with pytest.raises(RequestError, match="reply must be"):
            await call(redis, "submit_many", {"jobs": jobs[:1], "reply": "tiny"})
    finally:
        await redis.aclose()


def test_views_delta_round_trips_and_ignores_fields_it_does_not_know() -> None:
    base = JobView(1, "default", "t", "!!a.b\n", "heroscript", "new", log_lines=("x",))
    other = dataclasses.replace(base, job_id=2, log_lines=("x", "y"), depends_on=(1,))
    short = views_delta([base, other])
    assert short["rest"] == [{"job_id": 2, "log_lines": ("x", "y"), "depends_on": (1,)}]
    short["rest"][0]["from_a_newer_engine"] = 1
    assert views_from_delta(short) == [base, other]
    assert views_from_delta(views_delta([])) == []


def test_the_validation_cache_never_answers_for_another_type_or_registry() -> None:
    registry = ActorRegistry.from_settings(plugins=False)
    check = make_validator(registry)
    script = "!!late.greet name:x\n"
    with pytest.raises(InvalidParamsError):
        check(ParamsType.HEROSCRIPT, script)

    class Late:
        def greet(self, name: str) -> str:
            return name

    registry.register("late", Late)
    check(ParamsType.HEROSCRIPT, script)  # a new actor: the earlier refusal is not kept
    check(ParamsType.HEROSCRIPT, script)  # and now a kept pass
    with pytest.raises(InvalidParamsError, match="not JSON"):
        check(ParamsType.OPENRPC, script)  # the same text, another type: its own verdict
    registry.unregister("late")
    with pytest.raises(InvalidParamsError):
        check(ParamsType.HEROSCRIPT, script)  # the kept pass was for the old actors
    rpc = '{"jsonrpc": "2.0", "method": "core.echo", "id": 1}'
    check(ParamsType.OPENRPC, rpc)
    with pytest.raises(InvalidParamsError, match="empty"):
        check(ParamsType.OPENRPC, " ")  # refusals are never kept: each one found again
    with pytest.raises(InvalidParamsError, match="empty"):
        check(ParamsType.OPENRPC, " ")


async def test_a_batch_through_the_api_stays_all_or_none(engine: Engine) -> None:
    specs = [JobSpec("!!core.echo message:same\n", topic="api")] * 999
    specs.append(JobSpec("!!core.echo message:same\n", topic="api", priority=12))
    with pytest.raises(JobRefused) as refused:
        await engine.api.submit_many(specs)
    assert refused.value.index == 999
    assert [v for v in await engine.api.jobs(limit=5) if v.topic == "api"] == []


async def test_a_request_that_waits_holds_no_other_request_up(engine: Engine) -> None:
    # A placeholder claim makes a unique submit wait until it turns into a job id (or
    # goes): while it waits, the request server answers other requests.
    claim = keys.unique_claim_key("default", "waits", "held")
    redis = engine.redis.client()
    try:
        await redis.set(claim, "pending:someone-else", px=30_000)
        args = {"params": "!!core.echo message:w\n", "topic": "waits", "unique_key": "held"}
        waiting = asyncio.create_task(call(redis, "submit", args))
        await async_poll(lambda: _taken(redis), what="the submit taken by the engine")
        assert await call(redis, "jobs", {"limit": 1}) is not None
        assert not waiting.done()
        await redis.delete(claim)  # the other submit gave the key up: this one takes it
        made = await waiting
        assert (made["unique_key"], made["duplicate"]) == ("held", False)
    finally:
        await redis.aclose()


async def _taken(redis: Any) -> bool:
    return int(await redis.llen(keys.REQUESTS)) == 0


async def test_a_submit_cancelled_before_its_batch_begins_makes_no_job(engine: Engine) -> None:
    manager = engine.jobs
    gone = asyncio.create_task(manager.submit_one(JobSpec("!!core.echo message:g\n", "gone")))
    kept = asyncio.create_task(manager.submit_one(JobSpec("!!core.echo message:k\n", "gone")))
    await asyncio.sleep(0)  # both wait for the batch, which has not begun
    gone.cancel()
    job, created = await kept
    assert created
    with pytest.raises(asyncio.CancelledError):
        await gone
    listed = await engine.api.jobs(limit=10)
    assert [v.params for v in listed if v.topic == "gone"] == [job.params]


def _request_server(engine: Engine) -> RequestServer:
    server = engine.services["requests"]
    assert isinstance(server, RequestServer)
    return server


async def test_an_async_clients_concurrent_submits_travel_as_one_request(engine: Engine) -> None:
    server = _request_server(engine)
    async with AsyncClient.from_config(engine.config) as client:
        await client.submit("!!core.echo message:warm\n", topic="together")
        before = server.taken
        texts = [f"!!core.echo message:t{i}\n" for i in range(20)]
        texts.insert(7, "!!core.echo message:ok\n!!nope.nothing\n")
        outcomes = await asyncio.gather(
            *(client.submit(t, topic="together") for t in texts), return_exceptions=True
        )
        assert server.taken == before + 1  # one request, one reply, for all 21 callers
    refused = outcomes.pop(7)
    assert isinstance(refused, JobRefused)  # its own typed error, as if sent alone
    assert (refused.index, refused.line) == (None, 2)
    views = [v for v in outcomes if isinstance(v, JobView)]
    assert [v.params for v in views] == texts[:7] + texts[8:]
    assert len({v.job_id for v in views}) == 20
    stored = await asyncio.to_thread(engine.jobs.read_many, [v.job_id for v in views])
    assert [stored[v.job_id].params for v in views] == [v.params for v in views]


async def test_a_big_submit_goes_alone_and_an_older_engine_gets_one_request_each(
    engine: Engine,
) -> None:
    server = _request_server(engine)
    big = "!!core.echo message:" + "x" * (COALESCE_BYTES + 1) + "\n"
    async with AsyncClient.from_config(engine.config) as client:
        await client.submit("!!core.echo message:warm\n", topic="apart")
        before = server.taken
        texts = [f"!!core.echo message:a{i}\n" for i in range(5)]
        outcomes = await asyncio.gather(
            *(client.submit(t, topic="apart") for t in [big, *texts]), return_exceptions=True
        )
        assert server.taken == before + 2  # the big one alone, the small ones together
        refused = outcomes.pop(0)
        assert isinstance(refused, JobRefused)  # by the engine, as any submit of its size
        assert "the limit is" in str(refused)
        assert [v.params for v in outcomes if isinstance(v, JobView)] == texts
        # An engine that does not know `submit_each` (one from before it): each alone.
        del server._ops["submit_each"]
        before = server.taken
        texts = [f"!!core.echo message:o{i}\n" for i in range(5)]
        views = await asyncio.gather(*(client.submit(t, topic="apart") for t in texts))
        assert [v.params for v in views] == texts
        assert server.taken == before + 1 + 5  # the refused request, then one per submit


async def test_the_enqueue_call_publishes_each_batchs_events_once(engine: Engine) -> None:
    redis = engine.redis.client()
    pubsub: Any = redis.pubsub()
    try:
        await pubsub.subscribe(keys.EVENTS_CHANNEL)
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        paused = "evented"
        await engine.api.pause_queue("default", paused)  # only the submits' own events
        one = await engine.api.submit("!!core.echo message:one\n", topic=paused)
        batch = await engine.api.submit_many(
            [JobSpec(f"!!core.echo message:b{i}\n", topic=paused) for i in range(3)]
        )
        messages: list[Any] = []
        while len(messages) < 2:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            assert message is not None, "an event message is missing"
            messages.append(orjson.loads(message["data"]))
        first, second = messages
        assert (first["id"], first["status"]) == (one.job_id, "new")
        assert [(e["id"], e["status"]) for e in second] == [(v.job_id, "new") for v in batch]
    finally:
        await pubsub.aclose()
        await redis.aclose()


async def test_submit_each_gives_each_item_its_own_outcome_and_one_shared_write(
    engine: Engine,
) -> None:
    manager = engine.jobs
    counting = CountingWrites(manager.db)
    await engine.api.pause_queue("default", "each")  # no run's versions among the writes
    specs = [JobSpec(f"!!core.echo message:e{i}\n", topic="each") for i in range(8)]
    specs[3] = JobSpec("!!nope.nothing\n", topic="each")
    specs[5] = JobSpec("!!core.echo message:keyed\n", topic="each", unique_key="k")
    manager.db = counting  # type: ignore[assignment]  # the real db, its writes counted
    try:
        outcomes = await engine.api.submit_each(specs)
    finally:
        manager.db = counting.db
    refused = outcomes[3]
    assert isinstance(refused, JobRefused)  # typed, as a submit of its own would raise
    assert refused.index is None
    views = [o for o in outcomes if isinstance(o, JobView)]
    assert [v.params for v in views] == [s.params for i, s in enumerate(specs) if i != 3]
    # The six plain ones in one write, the keyed one alone (its claim could refuse a batch).
    assert counting.writes == 2
    again = await engine.api.submit_each([specs[5]])
    assert isinstance(again[0], JobView)
    assert again[0].duplicate


async def test_a_client_submit_cancelled_before_its_request_left_makes_no_job(
    engine: Engine,
) -> None:
    server = _request_server(engine)
    async with AsyncClient.from_config(engine.config) as client:
        await client.submit("!!core.echo message:warm\n", topic="gone")
        before = server.taken
        kept = asyncio.ensure_future(client.submit("!!core.echo message:kept\n", topic="gone"))
        dropped = asyncio.ensure_future(client.submit("!!core.echo message:no\n", topic="gone"))
        await asyncio.sleep(0)  # both queued: the request leaves on a later turn
        dropped.cancel()
        view = await kept
        assert dropped.cancelled()
        assert server.taken == before + 1
    listed = await engine.api.jobs(limit=50)
    assert sorted(v.params for v in listed if v.topic == "gone") == sorted(
        ["!!core.echo message:warm\n", view.params]
    )


async def test_items_sent_as_params_alone_take_the_shared_spec(engine: Engine) -> None:
    await engine.api.pause_queue("default", "shared")  # they stay as they were made
    await engine.api.pause_queue("default", "own")
    redis = engine.redis.client()
    try:
        shared = {"params": "", "topic": "shared", "timeout": 5, "log": True}
        jobs: list[Any] = [
            "!!core.echo message:a\n",
            {"params": "!!core.echo message:b\n", "topic": "own", "priority": 3},
            "!!core.echo message:c\n",
        ]
        short = await call(redis, "submit_many", {"jobs": jobs, "shared": shared, "reply": "delta"})
        views = views_from_delta(short)
        assert [(v.params, v.topic, v.timeout, v.log) for v in views] == [
            ("!!core.echo message:a\n", "shared", 5.0, True),
            ("!!core.echo message:b\n", "own", 60.0, False),
            ("!!core.echo message:c\n", "shared", 5.0, True),
        ]
        assert await engine.api.jobs_by_id([v.job_id for v in views]) == views
        # The shared spec is checked as an item is; a string item needs one.
        before = await engine.jobs.db.next_id()
        bad = {"params": "", "topic": "shared", "timeout": "soon"}
        with pytest.raises(RequestError, match="shared: timeout must be a number"):
            await call(redis, "submit_many", {"jobs": jobs, "shared": bad})
        with pytest.raises(RequestError, match="item 0: topic"):
            await call(
                redis, "submit_many", {"jobs": jobs, "shared": {"params": "", "topic": "a b"}}
            )
        with pytest.raises(RequestError, match="item 0: a job must be an object") as refused:
            await call(redis, "submit_many", {"jobs": jobs})
        assert refused.value.reply["index"] == 0
        # What an engine from before `shared` answers, which the client resends in full.
        old_engine = typed_error(refused.value)
        assert isinstance(old_engine, JobRefused)
        assert _before_shared(old_engine, jobs)
        assert not _before_shared(JobRefused("item 1: topic", index=1), jobs)
        assert await engine.jobs.db.next_id() == before
    finally:
        await redis.aclose()


async def test_the_short_reply_made_from_the_jobs_is_the_one_made_from_their_views(
    engine: Engine,
) -> None:
    await engine.api.pause_queue("default", "forms")  # they stay as they were made
    await engine.api.pause_queue("other", "forms")
    specs = [
        JobSpec("!!core.echo message:a\n", topic="forms", name="first"),
        JobSpec("!!core.echo message:b\n", topic="forms", log=True, priority=2),
        JobSpec("!!core.echo message:c\n", topic="forms", delay=3600, retries=2),
        JobSpec("!!core.echo message:d\n", topic="forms", unique_key="k"),
        JobSpec("!!core.echo message:e\n", topic="forms", unique_key="k"),
        JobSpec(
            "!!core.echo message:f\n", topic="forms", depends_on=("first",), on_parent_error="run"
        ),
        JobSpec("{}", topic="forms", circle="other", params_type="openrpc"),
    ]
    made = await engine.jobs.submit_jobs(specs)
    views = [JobView.of(job, duplicate=not new) for job, new in made]
    assert jobs_delta(made) == views_delta(views)
    assert views_from_delta(orjson.loads(orjson.dumps(jobs_delta(made)))) == views
    assert jobs_delta([]) == views_delta([])


async def test_an_engine_from_before_shared_items_gets_each_item_in_full(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:

    def each_item_in_full(items: list[Any], shared: object) -> list[JobSpec]:
        # What an engine from before `shared` does with a batch's items.
        specs = []
        for index, item in enumerate(items):
            try:
                specs.append(spec_from_wire(item))
            except ValueError as exc:
                raise JobRefused(f"item {index}: {exc}", index=index) from None
        return specs

    monkeypatch.setattr("core.remote._batch_specs", each_item_in_full)
    requests = engine.services["requests"]
    assert isinstance(requests, RequestServer)
    texts = ["!!core.echo message:old1\n", "!!core.echo message:old2\n"]
    async with AsyncClient.from_config(engine.config) as client:
        before = requests.taken
        made = await client.submit_many(texts, topic="older")
        assert requests.taken == before + 2  # refused, then sent in full
        assert [(v.params, v.topic) for v in made] == [(t, "older") for t in texts]
        again = await client.submit_many(texts, topic="older")
        assert requests.taken == before + 3  # in full at once from then on
        assert [v.params for v in again] == texts


async def test_the_items_of_a_batch_share_no_list_with_each_other(engine: Engine) -> None:
    """An item's job copies its settings' job: every mutable field must be its own."""
    memo: dict[tuple[Any, ...], Any] = {}
    specs = [JobSpec(f"!!core.echo message:{i}\n", topic="own") for i in range(2)]
    first, second = (engine.jobs._check(spec, memo=memo) for spec in specs)
    assert len(memo) == 1  # both came from the one settings' job
    mutable = [
        f.name
        for f in dataclasses.fields(first)
        if isinstance(getattr(first, f.name), list | dict | set)
    ]
    assert {"log_lines", "depends_on"} <= set(mutable)
    for name in mutable:
        assert getattr(first, name) is not getattr(second, name), name
