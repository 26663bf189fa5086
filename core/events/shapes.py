"""Shapes the engine and its clients share: a new job, a job filter, limits, states, messages.

core.events names them too; the client library imports them from here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Required, TypedDict

# Jobs in one batch: a request channel message and an HTTP body both stay near 1 MiB.
MAX_BATCH = 1_000

if TYPE_CHECKING:
    from core.events import JobStateChanged


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
