"""AsyncClient: a running engine's jobs from asyncio code, over its Redis request channel."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self, TypedDict, Unpack

from core.api import (
    JobFilter,
    JobOptions,
    JobSpec,
    JobView,
    LimitsView,
    ScheduleOptions,
    ScheduleView,
    filter_wire,
    job_from_wire,
    limits_from_wire,
    schedule_from_wire,
    spec_wire,
    views_from_delta,
)
from core.channel import (
    EVENTS_CHANNEL,
    MAX_BATCH,
    MAX_LIST_LIMIT,
    MAX_PURGE_PER_REQUEST,
    MAX_REQUEST_BYTES,
    RequestError,
    call,
    dumps,
)
from core.config import Config
from core.redis_server.backoff import Backoff
from core.shapes import wire_messages
from heroagent.connect import client_config, redis_for
from heroagent.errors import ClientError, EngineUnreachable, JobFailed, WaitTimeout, typed_error
from heroagent.resp import RedisReplyError, RespClient

ENDED = ("done", "error")
# Submits made in one turn of the loop go as one request of at most MAX_BATCH of them
# and this many bytes (below the channel's limit, for the request's own fields); one
# bigger alone goes as its own `submit`, which says so when it is over the limit.
COALESCE_REQUEST_BYTES = MAX_REQUEST_BYTES - 4_096
COALESCE_BYTES = COALESCE_REQUEST_BYTES // 4
# A queued submit: its wire form, that form's encoded size, its caller's answer.
_Queued = tuple[dict[str, Any], int, "asyncio.Future[JobView]"]


class ClientOptions(TypedDict, total=False):
    """How a client finds its engine, beyond a URL and a password (both clients take them).

    `config`: a loaded config to use as it is; `config_file`: a config file to load (it
    must exist); `wait_seconds`: how long a request waits for an engine to take it and
    then to answer it (10 by default).
    """

    config: Config | None
    config_file: str | Path | None
    wait_seconds: float


class PurgeOptions(TypedDict, total=False):
    """What `purge` takes after the filter."""

    before: float | None
    keep: int
    progress: Callable[[int], None] | None


SUBSCRIBE_SECONDS = 5.0
# A wait whose connection breaks (a Sentinel failover, a restart) subscribes again for
# this long before it gives up as unreachable; the read after each subscribe catches
# the ends it missed meanwhile.
FOLLOW_SECONDS = 30.0


class AsyncClient:
    """The engine's jobs from asyncio code: submit, wait on events, read, change.

    `AsyncClient()` reads the config the way `heroagent` does (the default file or
    $HEROAGENT_CONFIG, then HEROAGENT_* variables); `AsyncClient(url=..., password=...)`
    names a Redis server; `AsyncClient.from_config(config)` takes a loaded config.
    Nothing connects until the first call; use `async with AsyncClient() as client:` or
    `await client.aclose()`. Calls may run concurrently on one client.

    Errors are typed: the engine's refusals are `JobRefused` (and its `JobNotFound`,
    `JobEnded`, `JobNotEnded`) with line, column and batch index, a stopped jobs service
    is `EngineUnavailable`, no engine at all is `EngineUnreachable`.
    """

    def __init__(
        self, url: str | None = None, password: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        self.config = client_config(
            url, config=options.get("config"), config_file=options.get("config_file")
        )
        # How long a request waits for an engine to take it (and then to answer it).
        self.wait_seconds = options.get("wait_seconds", 10.0)
        self._password = password
        self._redis: RespClient | None = None
        # Submits made in one turn of the loop travel as one `submit_each` request.
        self._queued: list[_Queued] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._coalesce = True

    @classmethod
    def from_config(
        cls, config: Config, *, password: str | None = None, wait_seconds: float = 10.0
    ) -> Self:
        """A client for the engine this config describes."""
        return cls(password=password, config=config, wait_seconds=wait_seconds)

    async def aclose(self) -> None:
        """Close the connections; the client may be used again (it reconnects)."""
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _client(self) -> RespClient:
        # Made on first use, in the loop that uses it: its connections are bound to one.
        if self._redis is None:
            self._redis = redis_for(self.config, self._password)
        return self._redis

    async def _call(self, op: str, args: dict[str, Any]) -> Any:
        try:
            return await call(self._client(), op, args, wait_seconds=self.wait_seconds)
        except RequestError as exc:
            raise typed_error(exc) from None
        except (RedisReplyError, OSError) as exc:
            raise _unreachable(exc) from None

    # -- creating ------------------------------------------------------------------------

    async def submit(self, params: str, **options: Unpack[JobOptions]) -> JobView:
        """Queue one job; raises JobRefused (with line and column for HeroScript).

        The options are JobSpec's fields: topic, circle, params_type, timeout, log, and
        the timing and retry fields. With `delay` (seconds) or `run_at` (epoch seconds)
        it waits as `scheduled`; retry fields and `priority` (0-9, higher runs first)
        left None take the queue's defaults in the engine's config.

        With `unique_key`, a job of the same circle/topic and key that has not ended
        (or ended less than `unique_for` seconds ago) comes back instead of a new one:
        the answer's `duplicate` is True then. With `depends_on` (job ids) it waits as
        `scheduled` until they are done; a parent ending in error ends it in error
        (`dependency_failed`) unless `on_parent_error="run"`.
        """
        item = spec_wire(JobSpec(params, **options))
        size = len(dumps(item))
        if not self._coalesce or size > COALESCE_BYTES:
            return job_from_wire(await self._call("submit", item))
        future: asyncio.Future[JobView] = asyncio.get_running_loop().create_future()
        if not self._queued:
            # Started next turn of the loop: every submit made until then goes with it.
            sender = asyncio.create_task(self._send_queued())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        self._queued.append((item, size, future))
        return await future

    async def _send_queued(self) -> None:
        """Send the submits queued since the last turn, as few requests as the limits allow."""
        # A caller cancelled before its request left sends nothing: no job is made for it.
        queued = [entry for entry in self._queued if not entry[2].done()]
        self._queued = []
        chunks: list[list[_Queued]] = [[]]
        room = COALESCE_REQUEST_BYTES
        for entry in queued:
            if len(chunks[-1]) >= MAX_BATCH or entry[1] > room:
                chunks.append([])
                room = COALESCE_REQUEST_BYTES
            chunks[-1].append(entry)
            room -= entry[1] + 1
        await asyncio.gather(*(self._send_chunk(chunk) for chunk in chunks))

    async def _send_chunk(self, chunk: list[_Queued]) -> None:
        """One request for these submits; each caller gets its own view or error."""
        items = [item for item, _, _ in chunk]
        try:
            try:
                if len(chunk) == 1 or not self._coalesce:
                    outcomes = await self._submit_alone(items)
                else:
                    outcomes = await self._submit_each(items)
            except Exception as exc:  # the request as a whole failed: each caller hears why
                outcomes = [exc] * len(chunk)
            for (_, _, future), outcome in zip(chunk, outcomes, strict=True):
                if future.done():
                    continue  # its caller was cancelled (the job may have been made)
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                    continue
                try:
                    future.set_result(job_from_wire(outcome))
                except (TypeError, KeyError, ValueError) as exc:
                    future.set_exception(ClientError(f"the engine's reply is unreadable: {exc}"))
        finally:
            for _, _, future in chunk:
                future.cancel()  # only those not answered: this sender was cancelled

    async def _submit_alone(self, items: list[dict[str, Any]]) -> list[Any]:
        """One `submit` request per item, all at once: each item's job data or error."""
        if len(items) == 1:  # a lone call, the usual case: no gather and task around it
            try:
                return [await self._call("submit", items[0])]
            except Exception as exc:  # its caller's own error
                return [exc]
        return await asyncio.gather(
            *(self._call("submit", item) for item in items), return_exceptions=True
        )

    async def _submit_each(self, items: list[dict[str, Any]]) -> list[Any]:
        """The `submit_each` request: each item's job data, or its typed error."""
        try:
            replies = await call(
                self._client(), "submit_each", {"jobs": items}, wait_seconds=self.wait_seconds
            )
        except RequestError as exc:
            if exc.kind == "refused" and "unknown request 'submit_each'" in str(exc):
                # An engine from before `submit_each`: one request per submit, from now on.
                self._coalesce = False
                return await self._submit_alone(items)
            raise typed_error(exc) from None
        except (RedisReplyError, OSError) as exc:
            raise _unreachable(exc) from None
        if not isinstance(replies, list) or len(replies) != len(items):
            raise ClientError("the engine's submit_each reply does not match its request")
        return [
            reply["ok"]
            if "ok" in reply
            else typed_error(RequestError(reply["error"], reply.get("kind", "refused"), reply))
            for reply in replies
        ]

    async def submit_many(
        self,
        jobs: Iterable[JobSpec | str],
        *,
        topic: str = "default",
        circle: str = "default",
        params_type: str = "heroscript",
        timeout: float = 60,  # noqa: ASYNC109 - the jobs' own run-time limit
        log: bool = False,
    ) -> list[JobView]:
        """Queue a batch in one request: one durable write and one Redis transaction.

        Items are `JobSpec`s, or params strings that take the keyword arguments. All or
        none: when an item is refused, no job is created and `JobRefused.index` is its
        place in `jobs` (from 0). A batch holds at most 1,000 jobs and 1 MiB.
        """
        specs = [
            job
            if isinstance(job, JobSpec)
            else JobSpec(job, topic, circle, params_type, timeout, log)
            for job in jobs
        ]
        if not specs:
            return []
        # The short reply (see core.api.views_delta); an engine from before it sends a list.
        args = {"jobs": [spec_wire(s) for s in specs], "reply": "delta"}
        found = await self._call("submit_many", args)
        if isinstance(found, dict):
            return views_from_delta(found)
        return [job_from_wire(data) for data in found]

    async def submit_graph(self, text: str) -> list[JobView]:
        """Queue the jobs of a HeroScript graph (`!!job.define name:… after:…`) as one batch.

        The jobs come back in the order the text defines them; all or none (a syntax
        error, an unknown name or a cycle is a `JobRefused` naming it).
        """
        return [job_from_wire(data) for data in await self._call("submit_graph", {"text": text})]

    # -- reading -------------------------------------------------------------------------

    async def get(self, job_id: int) -> JobView:
        """A job's current state; raises JobNotFound."""
        return job_from_wire(await self._call("job", {"id": job_id}))

    async def get_many(self, job_ids: Iterable[int]) -> list[JobView]:
        """The current state of each job, in the order asked (1,000 per request)."""
        ids = list(job_ids)
        views: list[JobView] = []
        for start in range(0, len(ids), MAX_LIST_LIMIT):
            found = await self._call("get_many", {"ids": ids[start : start + MAX_LIST_LIMIT]})
            views.extend(job_from_wire(data) for data in found)
        return views

    async def history(self, job_id: int) -> list[JobView]:
        """Every stored version of a job, oldest first."""
        return [job_from_wire(d) for d in await self._call("history", {"id": job_id})]

    async def jobs(
        self, flt: JobFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[JobView]:
        """A page of the history, newest first; pass the last id as `before_id` for more."""
        args = {**filter_wire(flt or JobFilter()), "limit": limit, "before_id": before_id}
        return [job_from_wire(d) for d in await self._call("jobs", args)]

    async def dead(
        self, flt: JobFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[JobView]:
        """Dead letters, newest first: jobs that ended in error after their last attempt."""
        flt = dataclasses.replace(flt or JobFilter(), dead=True)
        return await self.jobs(flt, limit=limit, before_id=before_id)

    async def requeue_many(self, flt: JobFilter) -> list[JobView]:
        """Run again every ended job the filter finds; each keeps its id and history.

        `JobFilter(dead=True)` requeues every dead letter.
        """
        found = await self._call("requeue_many", filter_wire(flt))
        return [job_from_wire(d) for d in found]

    async def purge(self, flt: JobFilter | None = None, **options: Unpack[PurgeOptions]) -> int:
        """Delete ended jobs from the history (see `EngineAPI.purge`); how many went.

        Only done and error jobs go, those that ended before `before` (epoch seconds)
        when given, all but the newest `keep`. `JobFilter(dead=True)` purges dead letters.
        It asks in steps of up to 5,000 jobs, so other requests are answered in between;
        `progress` gets the running count after each step.
        """
        progress = options.get("progress")
        args = {
            **filter_wire(flt or JobFilter()),
            "before": options.get("before"),
            "keep": options.get("keep", 0),
            "limit": MAX_PURGE_PER_REQUEST,
        }
        total = 0
        while True:
            purged = int(await self._call("purge", args))
            total += purged
            if progress is not None:
                progress(total)
            if purged < MAX_PURGE_PER_REQUEST:
                return total

    # -- waiting -------------------------------------------------------------------------

    async def wait(self, job_id: int, timeout: float | None = None) -> JobView:  # noqa: ASYNC109
        """Wait until the job has ended (done or error) and return its final state.

        It waits on the engine's events channel, not by asking again and again; raises
        WaitTimeout after `timeout` seconds (None waits as long as it takes).
        """
        return (await self.wait_many([job_id], timeout))[0]

    async def wait_many(
        self,
        job_ids: Iterable[int],
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors the sync client
    ) -> list[JobView]:
        """Wait until every one of these jobs has ended; their final states, in order."""
        ids = list(job_ids)
        pending: set[int] = set(ids)
        try:
            async with asyncio.timeout(timeout):
                return await self._wait_following(ids, pending)
        except TimeoutError:
            left = tuple(sorted(pending))
            if len(left) == 1:
                what = f"job {left[0]} did not"
            elif left:
                what = f"{len(left)} jobs (job {left[0]} and others) did not"
            else:
                what = "reading the ended jobs back did not"
            raise WaitTimeout(f"{what} end within {timeout:g} s", left) from None
        except (RedisReplyError, OSError) as exc:
            raise _unreachable(exc) from None

    async def _wait_following(self, ids: Sequence[int], pending: set[int]) -> list[JobView]:
        """`_wait_many`, subscribing again when the connection breaks, for a while.

        Only once it has been subscribed: a server not there at all is unreachable at once.
        """
        loop = asyncio.get_running_loop()
        backoff = Backoff()
        lost_since: list[float] = []
        ever: list[bool] = []

        def subscribed() -> None:
            backoff.reset()
            lost_since.clear()
            ever.append(True)

        while True:
            try:
                return await self._wait_many(ids, pending, subscribed)
            except OSError:  # a RespConnectionError among them
                if not ever:
                    raise
                if not lost_since:
                    lost_since.append(loop.time())
                if loop.time() - lost_since[0] > FOLLOW_SECONDS:
                    raise
                await backoff.wait()

    async def _wait_many(
        self, ids: Sequence[int], pending: set[int], subscribed: Callable[[], None]
    ) -> list[JobView]:
        """Subscribe, then read: an end in between is seen in the read, not missed."""
        # The subscription is in place once the server confirms it, not when sent.
        async with self._client().subscribe(EVENTS_CHANNEL, SUBSCRIBE_SECONDS) as subscription:
            subscribed()
            views = {view.job_id: view for view in await self.get_many(ids)}
            pending.intersection_update(i for i, view in views.items() if not view.ended)
            while pending:
                ended: list[int] = []
                while pending:
                    # One message may tell of many jobs (a batch the engine persisted).
                    for job_id in _ended_jobs(await subscription.message()):
                        if job_id in pending:
                            pending.discard(job_id)
                            ended.append(job_id)
                # An event says that a job ended, not its result: read those back in bulk.
                for view in await self.get_many(ended):
                    views[view.job_id] = view
                    if not view.ended:  # requeued since, or an event not from the engine
                        pending.add(view.job_id)
            return [views[job_id] for job_id in ids]

    async def result(self, job_id: int, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Wait for the job and return its result; raises JobFailed when it ended in error."""
        job = await self.wait(job_id, timeout)
        if job.status == "error":
            raise JobFailed(job)
        return job.result

    # -- changing ------------------------------------------------------------------------

    async def cancel(self, job_id: int) -> JobView:
        """End a waiting or running job as cancelled; raises JobEnded when it has ended."""
        return job_from_wire(await self._call("cancel", {"id": job_id}))

    async def requeue(self, job_id: int) -> JobView:
        """Run an ended job again under its id; raises JobNotEnded while it runs."""
        return job_from_wire(await self._call("requeue", {"id": job_id}))

    async def pause(self, circle: str, topic: str) -> None:
        """Stop handing out a queue's jobs; they keep waiting and new ones queue up."""
        await self._call("pause", {"circle": circle, "topic": topic})

    async def resume(self, circle: str, topic: str) -> None:
        """Hand out a paused queue's jobs again."""
        await self._call("resume", {"circle": circle, "topic": topic})

    async def limits(self) -> list[LimitsView]:
        """Every queue that has limits, with its active jobs and what holds it now."""
        return [limits_from_wire(d) for d in await self._call("limits", {})]

    async def set_limits(
        self, circle: str, topic: str, *, max_active: int = 0, rate: str = ""
    ) -> LimitsView:
        """Set a queue's limits for every worker at once; 0 and "" lift a limit.

        `max_active`: at most that many of its jobs active at once; `rate`: at most N
        starts per period ("20/s", "100/m", "5/10s"). Both replace what was set before.
        """
        args = {"circle": circle, "topic": topic, "max_active": max_active, "rate": rate}
        return limits_from_wire(await self._call("set_limits", args))

    async def schedules(self) -> list[ScheduleView]:
        """The engine's schedules (periodic jobs), with their last and next fire."""
        return [schedule_from_wire(d) for d in await self._call("schedules", {})]

    async def add_schedule(
        self, name: str, params: str, **options: Unpack[ScheduleOptions]
    ) -> ScheduleView:
        """Add (or replace) a schedule: `cron="0 9 * * *"` or `every="10s"`, not both."""
        args = {"name": name, "params": params, **options}
        return schedule_from_wire(await self._call("add_schedule", args))

    async def pause_schedule(self, name: str) -> ScheduleView:
        """Stop a schedule firing (ScheduleNotFound when there is none of that name)."""
        return schedule_from_wire(await self._call("pause_schedule", {"name": name}))

    async def resume_schedule(self, name: str) -> ScheduleView:
        """Fire a paused schedule again, from its next fire after now."""
        return schedule_from_wire(await self._call("resume_schedule", {"name": name}))

    async def remove_schedule(self, name: str) -> None:
        """Remove a schedule added at run time."""
        await self._call("remove_schedule", {"name": name})


def _ended_jobs(data: bytes) -> list[int]:
    """The ids of the jobs an events-channel message says have ended.

    A message is one event object, or an array of them (a batch the engine persisted).
    """
    try:
        decoded = json.loads(data)
    except (ValueError, TypeError):
        return []
    return [
        event["id"]
        for event in wire_messages(decoded)
        if event.get("type") == "job"
        and isinstance(event.get("id"), int)
        and event.get("status") in ENDED
    ]


def _unreachable(exc: BaseException) -> EngineUnreachable:
    return EngineUnreachable(
        f"cannot reach the engine's Redis server ({exc}); is heroagent running?"
    )
