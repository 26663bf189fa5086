"""The event bus: publish engine events to bounded, optionally coalescing subscriptions."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from typing import TypedDict, Unpack

from core.events import Event


class SubscribeOptions(TypedDict, total=False):
    """How a subscription queues and wakes (see `Subscription`)."""

    coalesce: bool
    loop: asyncio.AbstractEventLoop | None


class Subscription:
    """One subscriber's bounded queue; the oldest events go first when it overflows.

    A coalescing subscription keeps only the newest of the events that share a coalesce
    key (a job's state changes), so a slow reader sees current states, not every step.
    Subscribers that count transitions subscribe without it.

    A reader whose loop runs on another thread than the engine's (the terminal app,
    beside an engine on a thread of its own) passes that `loop`: puts and takes then
    share a lock, and a put into an empty queue wakes the reader through its loop's own
    call queue, once per batch taken, not once per event.
    """

    def __init__(self, bus: EventBus, maxsize: int, **options: Unpack[SubscribeOptions]) -> None:
        self._bus = bus
        self._maxsize = maxsize
        self._coalesce = options.get("coalesce", False)
        self._items: OrderedDict[Hashable, Event] = OrderedDict()
        self._ready = asyncio.Event()
        self._loop = loop = options.get("loop")
        self._lock: contextlib.AbstractContextManager[object] = (
            threading.Lock() if loop is not None else contextlib.nullcontext()
        )
        # A wake-up is on its way to the reader's loop (only with `loop`).
        self._waking = False
        self.dropped = 0
        self.closed = False

    def put(self, event: Event) -> None:
        """Queue an event without ever blocking the publisher."""
        if self.closed:
            return
        key = event.coalesce_key() if self._coalesce and event.coalesce else id(event)
        with self._lock:
            items = self._items
            if key in items:
                del items[key]
            elif len(items) >= self._maxsize:
                items.popitem(last=False)
                self.dropped += 1
            items[key] = event
            if self._loop is None:
                self._ready.set()
                return
            if self._waking:
                return
            self._waking = True
        # A loop closed meanwhile has no reader left to wake.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ready.set)

    def drain(self) -> list[Event]:
        """Take every queued event at once, oldest first."""
        with self._lock:
            events = list(self._items.values())
            self._items.clear()
            self._waking = False
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
        """Stop receiving events and wake any waiter (call from the reader's loop)."""
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
        for subscription in self._subscriptions:
            subscription.put(event)

    def subscribe(self, maxsize: int = 10_000, **options: Unpack[SubscribeOptions]) -> Subscription:
        """A new bounded subscription; close it (or use `with`) when done.

        `loop`: the reader's, when it runs on another thread than the publisher.
        """
        subscription = Subscription(self, maxsize, **options)
        # A new list, not an append: `publish` on another thread may be reading the old.
        self._subscriptions = [*self._subscriptions, subscription]
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions = [s for s in self._subscriptions if s is not subscription]
