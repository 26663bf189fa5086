"""Engine events, service states, the bus that fans events out, and the shape of a new job.

Everything here is a plain value every layer may import: the job manager reads a
`JobSpec` as the API hands it over, so there is one shape of a new job, not a copy per layer;
likewise it answers with the `LimitsView` front ends show, and the history's index narrows
by the `JobFilter` they build.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Required, TypedDict

log = logging.getLogger(__name__)

# Tags what this process publishes over Redis, so its own relay can skip its own echoes.
PROCESS_ORIGIN = os.urandom(6).hex()


class ServiceState(StrEnum):
    """Life stages of a service."""

    DISABLED = "disabled"
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    FAILED = "failed"


@dataclass(frozen=True)
class ServiceStatus:
    """A snapshot of one service, for the TUI, the HTTP UI and `--serve` logs."""

    name: str
    state: ServiceState
    address: str = ""
    pid: int | None = None
    started_at: float | None = None
    last_error: str = ""
    detail: str = ""

    @property
    def uptime(self) -> float | None:
        """Seconds since the service last reached RUNNING, or None when not running."""
        if self.state is not ServiceState.RUNNING or self.started_at is None:
            return None
        return max(0.0, time.time() - self.started_at)


@dataclass(frozen=True)
class JobSpec:
    """One job to create: its params and where and how it runs.

    The engine checks it (names, params type, size, timeout, the HeroScript itself) when
    it is submitted; building one checks nothing.
    """

    params: str
    topic: str = "default"
    circle: str = "default"
    params_type: str = "heroscript"
    timeout: float = 60.0
    log: bool = False
    # Wait `delay` seconds, or until the epoch time `run_at`, before it is queued.
    delay: float = 0.0
    run_at: float = 0.0
    # The retry policy; None takes the queue's default from the config.
    retries: int | None = None
    backoff: str | None = None
    backoff_base: float | None = None
    backoff_max: float | None = None
    retry_on: Sequence[str] | None = None
    # Unique jobs: while a job with this key is not ended in the same circle/topic (and
    # `unique_for` seconds after it ended), submitting the key answers with that job.
    unique_key: str = ""
    unique_for: float = 0.0
    # Parents that must be done first: job ids, or the `name`s of items of the same batch.
    # "fail" ends the job as dependency_failed when a parent ends in error; "run" runs it.
    depends_on: Sequence[int | str] = ()
    on_parent_error: str = "fail"
    # The item's name in its batch, so later items can name it in `depends_on`.
    name: str = ""
    # 0-9, higher runs first; None takes the queue's default (0 unless configured).
    priority: int | None = None


@dataclass(frozen=True)
class LimitsView:
    """One queue's limits over every worker and machine, and what they do right now."""

    circle: str
    topic: str
    # At most this many of its jobs active at once (0: no limit).
    max_active: int = 0
    # At most N starts per period, as "20/s" or "100/m" (empty: no limit).
    rate: str = ""
    # Its jobs active now, as the limit counts them (0 without max_active).
    active: int = 0
    # "max_active 2" or "rate 20/s" while a limit holds its waiting jobs; else empty.
    held: str = ""

    @property
    def name(self) -> str:
        """`circle/topic`, as people write it."""
        return f"{self.circle}/{self.topic}"


class JobOptions(TypedDict, total=False):
    """JobSpec's fields but params, as keyword arguments: `submit(params, **options)`.

    Every submit that takes keywords (EngineAPI, AsyncClient, Client) takes these, so a
    new option is added here and on JobSpec, and nowhere else.
    """

    topic: str
    circle: str
    params_type: str
    timeout: float
    log: bool
    delay: float
    run_at: float
    retries: int | None
    backoff: str | None
    backoff_base: float | None
    backoff_max: float | None
    retry_on: Sequence[str] | None
    priority: int | None
    unique_key: str
    unique_for: float
    depends_on: Sequence[int | str]
    on_parent_error: str
    name: str


class ScheduleOptions(TypedDict, total=False):
    """How a schedule fires and the job each fire makes: `add_schedule(name, params, **options)`.

    Exactly one of `cron` and `every`; the rest as in `[schedules.<name>]` of the config.
    """

    topic: Required[str]
    cron: str
    every: str
    circle: str
    params_type: str
    timeout: float
    tz: str
    missed: str


# Every status a job can have, as JobFilter checks them.
JOB_STATUSES = ("new", "scheduled", "active", "done", "error")


@dataclass(frozen=True)
class JobFilter:
    """What to list; None means any. Built by the TUI's filter bar, the HTTP query, the CLI.

    The history's index narrows by it as it is, in every layer (retention, the scheduler).
    """

    status: str | None = None
    circle: str | None = None
    topic: str | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None
    # True: only dead letters (ended in error after their last allowed attempt).
    dead: bool | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in JOB_STATUSES:
            raise ValueError(
                f"status {self.status!r} is unknown; use one of {', '.join(JOB_STATUSES)}"
            )

    @classmethod
    def parse(cls, query: str) -> JobFilter:
        """Read `status:error topic:x circle:y queue:c/t free text`; the rest is free text."""
        fields: dict[str, str] = {}
        words = []
        for word in query.split():
            key, sep, value = word.partition(":")
            if sep and key in ("status", "circle", "topic", "queue") and value:
                if key == "queue" and "/" in value:
                    fields["circle"], fields["topic"] = value.split("/", 1)
                elif key != "queue":
                    fields[key] = value
            else:
                words.append(word)
        return cls(
            status=fields.get("status"),
            circle=fields.get("circle"),
            topic=fields.get("topic"),
            text=" ".join(words) or None,
        )

    def matches(self, event: JobStateChanged) -> bool:
        """Whether a live event belongs in a filtered list (free text cannot be known)."""
        return (
            self.text is None
            and self.since is None
            and self.until is None
            and self.dead is None
            and self.status in (None, event.status)
            and self.circle in (None, event.circle)
            and self.topic in (None, event.topic)
        )


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every engine event; `ts` is wall-clock seconds."""

    ts: float = field(default_factory=time.time)
    # Events that share a coalesce key replace each other in a slow subscriber's queue,
    # so a burst of state updates costs one redraw, not thousands.
    coalesce: ClassVar[bool] = False

    def coalesce_key(self) -> Hashable:
        """The key under which later events of the same kind replace this one."""
        return (type(self), id(self))


@dataclass(frozen=True, kw_only=True)
class ServiceStateChanged(Event):
    """A service moved to another state (see core.services.ServiceState)."""

    service: str
    state: str
    address: str = ""
    pid: int | None = None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class JobUpdate(Event):
    """Where one job is now: a coalescing subscriber keeps only the newest of each kind."""

    job_id: int
    coalesce: ClassVar[bool] = True

    def coalesce_key(self) -> Hashable:
        """One slot per job and kind (its state, its progress)."""
        return (type(self), self.job_id)


@dataclass(frozen=True, kw_only=True)
class JobStateChanged(JobUpdate):
    """A job moved to another status (new, active, done, error)."""

    circle: str
    topic: str
    status: str
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class JobsPurged(Event):
    """Jobs a purge deleted from the history: one batch's ids, at most 1,000 of them.

    Lists drop these rows; nothing else about the jobs is left to read.
    """

    job_ids: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class JobLogLine(Event):
    """A line a running job wrote to its log."""

    job_id: int
    line: str


def job_log_wire(job_id: int, line: str) -> dict[str, Any]:
    """The Redis pub/sub form of a job's log line (what `EventRelay` reads back)."""
    return {"type": "log", "id": job_id, "line": line, "origin": PROCESS_ORIGIN}


# A progress message is a status line, not a log: longer ones are cut to this many chars.
MAX_PROGRESS_MESSAGE = 200
# Control characters (newlines among them) become spaces, so the message stays one line.
_ONE_LINE = {code: " " for code in (*range(32), 127)}


def clean_progress(fraction: object, message: object = "") -> tuple[float, str]:
    """A progress report made safe to store and show: fraction in 0..1, message capped.

    Raises:
        TypeError: the fraction is not a number (a bool is not one), or the message
            is not a string.
        ValueError: the fraction is NaN.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise TypeError(f"progress: fraction must be a number from 0 to 1, got {fraction!r}")
    if not isinstance(message, str):
        raise TypeError(f"progress: message must be a string, got {type(message).__name__}")
    value = float(fraction)
    if math.isnan(value):
        raise ValueError("progress: fraction must be a number from 0 to 1, got NaN")
    if len(message) > MAX_PROGRESS_MESSAGE:
        message = message[: MAX_PROGRESS_MESSAGE - 1] + "…"
    return min(1.0, max(0.0, value)), message.translate(_ONE_LINE)


@dataclass(frozen=True, kw_only=True)
class JobProgress(JobUpdate):
    """How far a running job says it is: `fraction` from 0 to 1 and a short message."""

    fraction: float
    message: str = ""


def job_progress_wire(job_id: int, fraction: float, message: str) -> dict[str, Any]:
    """The Redis pub/sub form of a job's progress (what `EventRelay` reads back)."""
    return {
        "type": "progress",
        "id": job_id,
        "fraction": fraction,
        "message": message,
        "origin": PROCESS_ORIGIN,
    }


def event_from_wire(data: dict[str, Any]) -> Event | None:
    """The bus event of a message another process published, or None when it is not one."""
    if data.get("origin") == PROCESS_ORIGIN:
        return None
    kind = data.get("type")
    job_id = data.get("id")
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        return None
    if kind == "log" and isinstance(data.get("line"), str):
        return JobLogLine(job_id=job_id, line=data["line"])
    if kind == "progress":
        try:
            fraction, message = clean_progress(data.get("fraction"), data.get("message", ""))
        except (TypeError, ValueError):
            return None
        return JobProgress(job_id=job_id, fraction=fraction, message=message)
    return None


def wire_messages(data: object) -> list[dict[str, Any]]:
    """The event objects in one events-channel message: a lone object, or an array of them.

    The engine sends a persisted batch's job changes as one array (one PUBLISH per batch);
    everything else, and older senders, send one object per message.
    """
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    return []


def events_from_wire(data: object) -> list[Event]:
    """The bus events of one events-channel message (decoded JSON) from another process."""
    events = []
    for item in wire_messages(data):
        event = event_from_wire(item)
        if event is not None:
            events.append(event)
    return events


@dataclass(frozen=True, kw_only=True)
class LogEmitted(Event):
    """A log line from the engine or one of its services."""

    source: str
    level: str
    message: str


@dataclass(frozen=True, kw_only=True)
class RequestServed(LogEmitted):
    """One finished request of a server; also a log line, so log views show it as it is."""

    method: str
    path: str
    status: int
    bytes: int
    """Body bytes moved: the request body read plus the response body sent."""
    ms: float
    level: str = "info"
    message: str = ""

    def __post_init__(self) -> None:
        if not self.message:
            line = f"{self.method} {self.path} {self.status} {self.bytes} B {self.ms:.1f} ms"
            object.__setattr__(self, "message", line)


@dataclass(frozen=True, kw_only=True)
class WebDAVRequest(RequestServed):
    """One finished WebDAV request."""

    source: str = "webdav"


@dataclass(frozen=True, kw_only=True)
class HTTPRequest(RequestServed):
    """One finished request to the HTTP UI and JSON API."""

    source: str = "ui"


class Subscription:
    """One subscriber's bounded queue; the oldest events go first when it overflows.

    A coalescing subscription keeps only the newest of the events that share a coalesce
    key (a job's state changes), so a slow reader sees current states, not every step.
    Subscribers that count transitions subscribe without it.
    """

    def __init__(self, bus: EventBus, maxsize: int, *, coalesce: bool = False) -> None:
        self._bus = bus
        self._maxsize = maxsize
        self._coalesce = coalesce
        self._items: OrderedDict[Hashable, Event] = OrderedDict()
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, event: Event) -> None:
        """Queue an event without ever blocking the publisher."""
        if self.closed:
            return
        key = event.coalesce_key() if self._coalesce and event.coalesce else id(event)
        if key in self._items:
            del self._items[key]
        elif len(self._items) >= self._maxsize:
            self._items.popitem(last=False)
            self.dropped += 1
        self._items[key] = event
        self._ready.set()

    def drain(self) -> list[Event]:
        """Take every queued event at once, oldest first."""
        events = list(self._items.values())
        self._items.clear()
        self._ready.clear()
        return events

    async def get_batch(self) -> list[Event]:
        """Wait until at least one event is queued, then take them all."""
        while not self._items:
            if self.closed:
                return []
            await self._ready.wait()
            self._ready.clear()
        return self.drain()

    def close(self) -> None:
        """Stop receiving events and wake any waiter."""
        self.closed = True
        self._bus._unsubscribe(self)
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while not self.closed:
            for event in await self.get_batch():
                yield event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class EventBus:
    """Publish engine events to any number of subscribers; publishing never blocks."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def publish(self, event: Event) -> None:
        """Deliver an event to every subscriber (call from the engine's loop)."""
        for subscription in tuple(self._subscriptions):
            subscription.put(event)

    def subscribe(self, maxsize: int = 10_000, *, coalesce: bool = False) -> Subscription:
        """A new bounded subscription; close it (or use `with`) when done."""
        subscription = Subscription(self, maxsize, coalesce=coalesce)
        self._subscriptions.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
