"""Every call of the client library once, as a plan both clients run with their own I/O.

A plan (core.channel) is a generator: it yields the steps it needs (a Redis `Command`,
`Subscribe` to a channel, the next `Message` of it, a `Sleep`, a `Within` for a wait's
time limit) and gets each one's outcome back. `AsyncClient` awaits the steps on its
asyncio connection, `Client` does them on a blocking socket, so the request protocol,
the wait on the events channel and the typed errors exist once and the two clients
cannot drift apart, while a `Client` (and `heroagent submit`) never loads asyncio.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypedDict, TypeVar, Unpack

from core.api import (
    JobFilter,
    JobOptions,
    JobRefused,
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
    MAX_LIST_LIMIT,
    MAX_PURGE_PER_REQUEST,
    Plan,
    RequestError,
    request,
)
from core.config import Config
from core.events.shapes import wire_messages
from heroagent.connect import client_config
from heroagent.errors import ClientError, EngineUnreachable, JobFailed, WaitTimeout, typed_error
from heroagent.wire import DeadlinePassed, RedisReplyError

if TYPE_CHECKING:
    from core.redis_server.backoff import Backoff

T = TypeVar("T")
ENDED = ("done", "error")
SUBSCRIBE_SECONDS = 5.0
# A wait whose connection breaks (a Sentinel failover, a restart) subscribes again for
# this long before it gives up as unreachable; the read after each subscribe catches
# the ends it missed meanwhile.
FOLLOW_SECONDS = 30.0


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


class Subscribe(NamedTuple):
    """Subscribe to `channel` on a connection of its own: the subscription.

    The client closes it when the plan ends.
    """

    channel: str
    confirm_seconds: float = SUBSCRIBE_SECONDS


class Message(NamedTuple):
    """The data of the subscription's next message."""

    subscription: Any


class Sleep(NamedTuple):
    """Wait this many seconds."""

    seconds: float


class Within(NamedTuple):
    """The rest of the plan must end within `seconds` (None: no limit), or DeadlinePassed.

    The client ends the step then under way (its connection is closed) and sends
    DeadlinePassed into the plan.
    """

    seconds: float | None


def deadline_of(step: Within) -> float | None:
    """The `time.monotonic()` value a Within step ends at."""
    return None if step.seconds is None else time.monotonic() + step.seconds


class Calls:
    """The client's calls, each a plan; its config, password and request wait."""

    def __init__(
        self, url: str | None = None, password: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        self.config = client_config(
            url, config=options.get("config"), config_file=options.get("config_file")
        )
        # How long a request waits for an engine to take it (and then to answer it).
        self.wait_seconds = options.get("wait_seconds", 10.0)
        self.password = password
        # Whether `submit_many` sends params strings alone over one shared spec; False
        # once an engine from before that refused them.
        self.shared_items = True

    def _call(self, op: str, args: dict[str, Any]) -> Plan[Any]:
        try:
            return (yield from request(op, args, wait_seconds=self.wait_seconds))
        except RequestError as exc:
            raise typed_error(exc) from None
        except (RedisReplyError, OSError) as exc:
            raise unreachable(exc) from None

    # -- creating ------------------------------------------------------------------------

    def submit(self, params: str, **options: Unpack[JobOptions]) -> Plan[JobView]:
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
        spec = JobSpec(params, **options)
        return job_from_wire((yield from self.submit_item(spec_wire(spec))))

    def submit_item(self, item: dict[str, Any]) -> Plan[Any]:
        """The `submit` request of one job in its wire form: the new job's data."""
        return (yield from self._call("submit", item))

    def submit_each(self, items: list[dict[str, Any]]) -> Plan[list[Any] | None]:
        """The `submit_each` request: each item's job data, or its typed error (not raised).

        None from an engine from before `submit_each`, which refuses it as unknown.
        """
        try:
            replies = yield from request(
                "submit_each", {"jobs": items}, wait_seconds=self.wait_seconds
            )
        except RequestError as exc:
            if exc.kind == "refused" and "unknown request 'submit_each'" in str(exc):
                return None
            raise typed_error(exc) from None
        except (RedisReplyError, OSError) as exc:
            raise unreachable(exc) from None
        if not isinstance(replies, list) or len(replies) != len(items):
            raise ClientError("the engine's submit_each reply does not match its request")
        return [
            reply["ok"]
            if "ok" in reply
            else typed_error(RequestError(reply["error"], reply.get("kind", "refused"), reply))
            for reply in replies
        ]

    def submit_many(
        self,
        jobs: Iterable[JobSpec | str],
        *,
        topic: str = "default",
        circle: str = "default",
        params_type: str = "heroscript",
        timeout: float = 60,
        log: bool = False,
    ) -> Plan[list[JobView]]:
        """Queue a batch in one request: one durable write and one Redis transaction.

        Items are `JobSpec`s, or params strings that take the keyword arguments. All or
        none: when an item is refused, no job is created and `JobRefused.index` is its
        place in `jobs` (from 0). A batch holds at most 1,000 jobs and 1 MiB.
        """
        # A params string goes as it is, over the keyword arguments' spec sent once
        # (`shared`): the engine checks that spec once, not once an item.
        items: list[dict[str, Any] | str] = [
            spec_wire(job) if isinstance(job, JobSpec) else job for job in jobs
        ]
        if not items:
            return []
        # The short reply (see core.api.views_delta); an engine from before it sends a list.
        args: dict[str, Any] = {"jobs": items, "reply": "delta"}
        if any(isinstance(item, str) for item in items):
            shared = spec_wire(JobSpec("", topic, circle, params_type, timeout, log))
            args["shared"] = shared
            if not self.shared_items:
                args["jobs"] = _in_full(items, shared)
        try:
            found = yield from self._call("submit_many", args)
        except JobRefused as exc:
            if not _before_shared(exc, args["jobs"]):
                raise
            # An engine from before `shared` refuses a params string: each item in full,
            # from now on.
            self.shared_items = False
            args["jobs"] = _in_full(items, shared)
            found = yield from self._call("submit_many", args)
        if isinstance(found, dict):
            return views_from_delta(found)
        return [job_from_wire(data) for data in found]

    def submit_graph(self, text: str) -> Plan[list[JobView]]:
        """Queue the jobs of a HeroScript graph (`!!job.define name:… after:…`) as one batch.

        The jobs come back in the order the text defines them; all or none (a syntax
        error, an unknown name or a cycle is a `JobRefused` naming it).
        """
        found = yield from self._call("submit_graph", {"text": text})
        return [job_from_wire(data) for data in found]

    # -- reading -------------------------------------------------------------------------

    def get(self, job_id: int) -> Plan[JobView]:
        """A job's current state; raises JobNotFound."""
        return job_from_wire((yield from self._call("job", {"id": job_id})))

    def get_many(self, job_ids: Iterable[int]) -> Plan[list[JobView]]:
        """The current state of each job, in the order asked (1,000 per request)."""
        ids = list(job_ids)
        views: list[JobView] = []
        for start in range(0, len(ids), MAX_LIST_LIMIT):
            args = {"ids": ids[start : start + MAX_LIST_LIMIT]}
            views.extend(job_from_wire(data) for data in (yield from self._call("get_many", args)))
        return views

    def history(self, job_id: int) -> Plan[list[JobView]]:
        """Every stored version of a job, oldest first."""
        return [job_from_wire(d) for d in (yield from self._call("history", {"id": job_id}))]

    def jobs(
        self, flt: JobFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> Plan[list[JobView]]:
        """A page of the history, newest first; pass the last id as `before_id` for more."""
        args = {**filter_wire(flt or JobFilter()), "limit": limit, "before_id": before_id}
        return [job_from_wire(d) for d in (yield from self._call("jobs", args))]

    def dead(
        self, flt: JobFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> Plan[list[JobView]]:
        """Dead letters, newest first: jobs that ended in error after their last attempt."""
        flt = dataclasses.replace(flt or JobFilter(), dead=True)
        return (yield from self.jobs(flt, limit=limit, before_id=before_id))

    def requeue_many(self, flt: JobFilter) -> Plan[list[JobView]]:
        """Run again every ended job the filter finds; each keeps its id and history.

        `JobFilter(dead=True)` requeues every dead letter.
        """
        found = yield from self._call("requeue_many", filter_wire(flt))
        return [job_from_wire(d) for d in found]

    def purge(self, flt: JobFilter | None = None, **options: Unpack[PurgeOptions]) -> Plan[int]:
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
            purged = int((yield from self._call("purge", args)))
            total += purged
            if progress is not None:
                progress(total)
            if purged < MAX_PURGE_PER_REQUEST:
                return total

    # -- waiting -------------------------------------------------------------------------

    def wait(self, job_id: int, timeout: float | None = None) -> Plan[JobView]:
        """Wait until the job has ended (done or error) and return its final state.

        It waits on the engine's events channel, not by asking again and again; raises
        WaitTimeout after `timeout` seconds (None waits as long as it takes).
        """
        return (yield from self.wait_many([job_id], timeout))[0]

    def wait_many(
        self, job_ids: Iterable[int], timeout: float | None = None
    ) -> Plan[list[JobView]]:
        """Wait until every one of these jobs has ended; their final states, in order."""
        ids = list(job_ids)
        pending: set[int] = set(ids)
        yield Within(timeout)
        try:
            return (yield from self._wait_following(ids, pending))
        except DeadlinePassed:
            left = tuple(sorted(pending))
            if len(left) == 1:
                what = f"job {left[0]} did not"
            elif left:
                what = f"{len(left)} jobs (job {left[0]} and others) did not"
            else:
                what = "reading the ended jobs back did not"
            raise WaitTimeout(f"{what} end within {timeout:g} s", left) from None
        except (RedisReplyError, OSError) as exc:
            raise unreachable(exc) from None

    def _wait_following(self, ids: Sequence[int], pending: set[int]) -> Plan[list[JobView]]:
        """`_wait_many`, subscribing again when the connection breaks, for a while.

        Only once it has been subscribed: a server not there at all is unreachable at once.
        """
        # Made at the first loss (a fresh one after each subscribe): `random` loads then.
        backoff: list[Backoff] = []
        lost_since: list[float] = []
        ever: list[bool] = []

        def subscribed() -> None:
            backoff.clear()
            lost_since.clear()
            ever.append(True)

        while True:
            try:
                return (yield from self._wait_many(ids, pending, subscribed))
            except OSError:  # a RespConnectionError among them
                if not ever:
                    raise
                if not lost_since:
                    lost_since.append(time.monotonic())
                if time.monotonic() - lost_since[0] > FOLLOW_SECONDS:
                    raise
                if not backoff:
                    from core.redis_server.backoff import Backoff

                    backoff.append(Backoff())
                yield Sleep(backoff[0].next_delay())

    def _wait_many(
        self, ids: Sequence[int], pending: set[int], subscribed: Callable[[], None]
    ) -> Plan[list[JobView]]:
        """Subscribe, then read: an end in between is seen in the read, not missed."""
        # The subscription is in place once the server confirms it, not when sent.
        subscription = yield Subscribe(EVENTS_CHANNEL)
        subscribed()
        views = {view.job_id: view for view in (yield from self.get_many(ids))}
        pending.intersection_update(i for i, view in views.items() if not view.ended)
        while pending:
            ended: list[int] = []
            while pending:
                # One message may tell of many jobs (a batch the engine persisted).
                for job_id in _ended_jobs((yield Message(subscription))):
                    if job_id in pending:
                        pending.discard(job_id)
                        ended.append(job_id)
            # An event says that a job ended, not its result: read those back in bulk.
            for view in (yield from self.get_many(ended)):
                views[view.job_id] = view
                if not view.ended:  # requeued since, or an event not from the engine
                    pending.add(view.job_id)
        return [views[job_id] for job_id in ids]

    def result(self, job_id: int, timeout: float | None = None) -> Plan[str]:
        """Wait for the job and return its result; raises JobFailed when it ended in error."""
        job = yield from self.wait(job_id, timeout)
        if job.status == "error":
            raise JobFailed(job)
        return job.result

    # -- changing ------------------------------------------------------------------------

    def cancel(self, job_id: int) -> Plan[JobView]:
        """End a waiting or running job as cancelled; raises JobEnded when it has ended."""
        return job_from_wire((yield from self._call("cancel", {"id": job_id})))

    def requeue(self, job_id: int) -> Plan[JobView]:
        """Run an ended job again under its id; raises JobNotEnded while it runs."""
        return job_from_wire((yield from self._call("requeue", {"id": job_id})))

    def pause(self, circle: str, topic: str) -> Plan[None]:
        """Stop handing out a queue's jobs; they keep waiting and new ones queue up."""
        yield from self._call("pause", {"circle": circle, "topic": topic})

    def resume(self, circle: str, topic: str) -> Plan[None]:
        """Hand out a paused queue's jobs again."""
        yield from self._call("resume", {"circle": circle, "topic": topic})

    def limits(self) -> Plan[list[LimitsView]]:
        """Every queue that has limits, with its active jobs and what holds it now."""
        return [limits_from_wire(d) for d in (yield from self._call("limits", {}))]

    def set_limits(
        self, circle: str, topic: str, *, max_active: int = 0, rate: str = ""
    ) -> Plan[LimitsView]:
        """Set a queue's limits for every worker at once; 0 and "" lift a limit.

        `max_active`: at most that many of its jobs active at once; `rate`: at most N
        starts per period ("20/s", "100/m", "5/10s"). Both replace what was set before.
        """
        args = {"circle": circle, "topic": topic, "max_active": max_active, "rate": rate}
        return limits_from_wire((yield from self._call("set_limits", args)))

    def schedules(self) -> Plan[list[ScheduleView]]:
        """The engine's schedules (periodic jobs), with their last and next fire."""
        return [schedule_from_wire(d) for d in (yield from self._call("schedules", {}))]

    def add_schedule(
        self, name: str, params: str, **options: Unpack[ScheduleOptions]
    ) -> Plan[ScheduleView]:
        """Add (or replace) a schedule: `cron="0 9 * * *"` or `every="10s"`, not both."""
        args = {"name": name, "params": params, **options}
        return schedule_from_wire((yield from self._call("add_schedule", args)))

    def pause_schedule(self, name: str) -> Plan[ScheduleView]:
        """Stop a schedule firing (ScheduleNotFound when there is none of that name)."""
        return schedule_from_wire((yield from self._call("pause_schedule", {"name": name})))

    def resume_schedule(self, name: str) -> Plan[ScheduleView]:
        """Fire a paused schedule again, from its next fire after now."""
        return schedule_from_wire((yield from self._call("resume_schedule", {"name": name})))

    def remove_schedule(self, name: str) -> Plan[None]:
        """Remove a schedule added at run time."""
        yield from self._call("remove_schedule", {"name": name})


class ClientBase:
    """What both clients are made from: the calls (config, password, request wait)."""

    def __init__(
        self, url: str | None = None, password: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        self._calls = Calls(url, password, **options)

    @classmethod
    def from_config(
        cls, config: Config, *, password: str | None = None, wait_seconds: float = 10.0
    ) -> Self:
        """A client for the engine this config describes."""
        return cls(password=password, config=config, wait_seconds=wait_seconds)

    @property
    def config(self) -> Config:
        """The effective config the client uses."""
        return self._calls.config

    @property
    def wait_seconds(self) -> float:
        """How long a request waits for an engine to take it (and then to answer it)."""
        return self._calls.wait_seconds


def described(call: Any, method: Callable[..., Any], owner: str) -> None:
    """Give a client's form of a call the plan's name, docs and signature."""
    functools.update_wrapper(call, method)
    call.__qualname__ = f"{owner}.{method.__name__}"


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


def _in_full(items: Sequence[dict[str, Any] | str], shared: dict[str, Any]) -> list[Any]:
    """A batch's items each as a whole job object: a params string over `shared`."""
    return [{**shared, "params": item} if isinstance(item, str) else item for item in items]


def _before_shared(refused: JobRefused, items: Sequence[object]) -> bool:
    """Whether a `submit_many` was refused by an engine that takes no params-only items."""
    index = refused.index
    return (
        index is not None
        and 0 <= index < len(items)
        and isinstance(items[index], str)
        and "a job must be an object" in str(refused)
    )


def unreachable(exc: BaseException) -> EngineUnreachable:
    """The error for a Redis server that could not be found, reached or logged in to."""
    text = str(exc)
    if "NOAUTH" in text or "WRONGPASS" in text:
        # The server answered: it is up, and the hint to start heroagent would mislead.
        given = "was given a wrong one" if "WRONGPASS" in text else "was given none"
        return EngineUnreachable(
            f"the engine's Redis server asks for a password and {given} ({text}): "
            "put it in the URL (redis://:PASSWORD@HOST:PORT/ or "
            "unix://:PASSWORD@/path/to.sock), or leave out --redis-url to reach the "
            "server of the data dir's engine, whose password it reads from there"
        )
    return EngineUnreachable(
        f"cannot reach the engine's Redis server ({text}); is heroagent running?"
    )
