"""The event bus: publish engine events to bounded, optionally coalescing subscriptions."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable

from core.events import Event


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
