"""Engine events, with the shapes engine and clients share (core.events.shapes).

Everything here is a plain value every layer may import, and importing it loads no
asyncio: the blocking client uses the shapes too. The bus that fans events out to
subscribers is core.events.bus.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.events.shapes import JobFilter as JobFilter
from core.events.shapes import JobOptions as JobOptions
from core.events.shapes import JobSpec as JobSpec
from core.events.shapes import LimitsView as LimitsView
from core.events.shapes import ScheduleOptions as ScheduleOptions
from core.events.shapes import ServiceState as ServiceState
from core.events.shapes import ServiceStatus as ServiceStatus
from core.events.shapes import wire_messages as wire_messages

# Tags what this process publishes over Redis, so its own relay can skip its own echoes.
PROCESS_ORIGIN = os.urandom(6).hex()


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
