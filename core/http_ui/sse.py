"""Server-sent events: one bounded bus subscription per client, ended when the service stops."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from core.events import (
    Event,
    JobLogLine,
    JobProgress,
    JobStateChanged,
    LogEmitted,
    ServiceStateChanged,
)
from core.events.bus import Subscription as BusSubscription

# Comment lines keep proxies and browsers from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
# Per-client queue; the bus coalesces and drops the oldest, so a slow client costs bounded memory.
CLIENT_QUEUE = 2_000
EVENT_TYPES = ("job", "job_log", "job_progress", "service", "log")
DEFAULT_TYPES = frozenset({"job", "job_log", "job_progress", "service"})


def event_type(event: Event) -> str | None:
    """The SSE `event:` name of an engine event, or None for events not sent."""
    if isinstance(event, JobStateChanged):
        return "job"
    if isinstance(event, JobLogLine):
        return "job_log"
    if isinstance(event, JobProgress):
        return "job_progress"
    if isinstance(event, ServiceStateChanged):
        return "service"
    if isinstance(event, LogEmitted):
        return "log"
    return None


def event_data(event: Event) -> dict[str, Any]:
    """The JSON fields of an event."""
    return dataclasses.asdict(event)


def frame(name: str, data: dict[str, Any]) -> str:
    """One SSE message; JSON has no raw newlines, so `data:` is one line."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class EventStreams:
    """The open SSE streams of one service, so stopping it can end every one at once.

    At most `limit` are admitted at a time: each holds a bus subscription with its own
    queue and a connection, and nothing else bounds how many a client may open.
    """

    def __init__(self, subscribe: Callable[[int], BusSubscription], limit: int = 32) -> None:
        self._subscribe = subscribe
        self._open: set[BusSubscription] = set()
        self.limit = limit
        self._admitted = 0
        self.closed = False

    @property
    def count(self) -> int:
        """Streams admitted and not yet ended."""
        return self._admitted

    def admit(self) -> bool:
        """Take a slot for one more stream; False when all are taken or the service stops.

        Counted before the response starts, so a burst of requests cannot all pass the
        check before any stream is open; `release` gives the slot back.
        """
        if self.closed or self._admitted >= self.limit:
            return False
        self._admitted += 1
        return True

    def release(self) -> None:
        """Give back the slot `admit` took."""
        self._admitted -= 1

    async def stream(self, types: frozenset[str], hello: dict[str, Any]) -> AsyncIterator[str]:
        """Frames for one client: a `ready` snapshot, then events, with keep-alive comments."""
        if self.closed:
            return
        subscription = self._subscribe(CLIENT_QUEUE)
        self._open.add(subscription)
        try:
            yield frame("ready", hello)
            while not subscription.closed:
                try:
                    batch = await asyncio.wait_for(subscription.get_batch(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                chunk = []
                for event in batch:
                    name = event_type(event)
                    if name is not None and name in types:
                        chunk.append(frame(name, event_data(event)))
                if chunk:
                    yield "".join(chunk)
        finally:
            # Runs on client disconnect too (the response task is cancelled).
            self._open.discard(subscription)
            subscription.close()

    def close_all(self) -> None:
        """End every open stream: each generator wakes, sees its subscription closed, returns."""
        self.closed = True
        for subscription in tuple(self._open):
            subscription.close()
