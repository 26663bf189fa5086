"""Shapes the engine and its clients share: a new job, limits, states, channel messages.

Apart from core.events (which names them too) so that the client library loads these
without the engine's event classes: each frozen dataclass costs a compile at import,
and `heroagent submit` pays for every one (docs/client.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Required, TypedDict


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
