"""Engine events and the in-process bus that fans them out with bounded, coalescing queues."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field
from typing import ClassVar

log = logging.getLogger(__name__)


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
class JobStateChanged(Event):
    """A job moved to another status (new, active, done, error)."""

    job_id: int
    circle: str
    topic: str
    status: str
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class JobLogLine(Event):
    """A line a running job wrote to its log."""

    job_id: int
    line: str


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
    """One subscriber's bounded queue; the oldest events go first when it overflows."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._maxsize = maxsize
        self._items: OrderedDict[Hashable, Event] = OrderedDict()
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, event: Event) -> None:
        """Queue an event without ever blocking the publisher."""
        if self.closed:
            return
        key = event.coalesce_key() if event.coalesce else (type(event), id(event))
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

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        """A new bounded subscription; close it (or use `with`) when done."""
        subscription = Subscription(self, maxsize)
        self._subscriptions.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
