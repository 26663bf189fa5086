"""The frozen views of jobs, queues, actions, servers and problems that front ends show."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from core.events.shapes import LimitsView as LimitsView
from core.events.shapes import ServiceState as ServiceState
from core.events.shapes import ServiceStatus as ServiceStatus

if TYPE_CHECKING:
    from core.jobs import Job

ENDED_STATUSES = ("done", "error")
DEAD_KINDS = ("failed", "timeout", "worker_lost", "dependency_failed")


@dataclass(frozen=True)
class JobView:
    """A job as front ends show it; never changes under the viewer.

    The session key stays in the engine: a view never carries it.
    """

    job_id: int
    circle: str
    topic: str
    params: str
    params_type: str
    status: str
    timeout: float = 60.0
    time_scheduled: float = 0.0
    time_start: float = 0.0
    time_end: float = 0.0
    error: str = ""
    result: str = ""
    log: bool = False
    attempts: int = 0
    worker: str = ""
    log_lines: tuple[str, ...] = ()
    # The schedule whose fire (a Unix time) made this job; empty for jobs made by hand.
    schedule: str = ""
    fire_time: float = 0.0
    # When the job is (or its last attempt was) due, epoch seconds; 0: never waited for one.
    run_at: float = 0.0
    # Why the last attempt failed: failed, timeout, cancelled, worker_lost, ...
    error_kind: str = ""
    retries: int = 0
    backoff: str = "fixed"
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    # How far the job said it is (0..1) and its message: live while it runs, the last
    # value once it ended; None when it never reported any.
    progress: float | None = None
    progress_message: str = ""
    priority: int = 0
    unique_key: str = ""
    unique_for: float = 0.0
    # Parent job ids that had to be done first, and those it still waits for (while
    # `scheduled` for them); on_parent_error "run" runs it even when a parent failed.
    depends_on: tuple[int, ...] = ()
    wait_for: tuple[int, ...] = ()
    on_parent_error: str = "fail"
    # Its name in the graph it was submitted with.
    name: str = ""
    # Only on a submit's answer: True when the unique key was held, so this is the
    # existing job that holds it, not a new one.
    duplicate: bool = False

    @classmethod
    def of(cls, job: Job, *, duplicate: bool = False) -> JobView:
        """The view of a job record: its fields of the same name, the enums as their values.

        `duplicate` marks a submit's answer that is an existing job (a held unique key).
        """
        # From the instance dict, and the enums' plain values: a 1,000-job submit makes
        # a view of each job, and getattr and Enum.value were most of the cost.
        record = job.__dict__
        values = {name: record[name] for name in _JOB_FIELDS}
        values["circle"] = job.circle_id
        values["params_type"] = str(job.params_type)
        values["status"] = str(job.status)
        values["log_lines"] = tuple(job.log_lines)
        values["depends_on"] = tuple(job.depends_on)
        waits = job.wait_for
        values["wait_for"] = tuple(int(i) for i in waits.split(",") if i) if waits else ()
        values["on_parent_error"] = job.on_parent_error or "fail"
        values["duplicate"] = duplicate
        return cls.from_fields(values)

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> JobView:
        """The view with exactly these values, which must name every field, each of its type.

        Skips the generated __init__ (37 frozen setattrs, a third of the cost of a
        1,000-job submit's reply): frozen guards setattr, not the instance dict.
        """
        view = object.__new__(cls)
        view.__dict__.update(values)
        return view

    @property
    def queue(self) -> str:
        """`circle/topic`, as people write it."""
        return f"{self.circle}/{self.topic}"

    @property
    def ended(self) -> bool:
        """True once the job is done or failed."""
        return self.status in ENDED_STATUSES

    @property
    def dead(self) -> bool:
        """A dead letter: ended in error after its last allowed attempt (not cancelled)."""
        return self.status == "error" and self.error_kind in DEAD_KINDS

    @property
    def duration(self) -> float | None:
        """Seconds it ran, once it has ended."""
        if not self.time_start or not self.time_end:
            return None
        return max(0.0, self.time_end - self.time_start)


# The view's fields that the job record has under the same name (all but `circle`, and
# `duplicate`, which is the submit's answer, not the job's).
_JOB_FIELDS = tuple(f.name for f in fields(JobView) if f.name not in ("circle", "duplicate"))


@dataclass(frozen=True)
class QueueView:
    """One circle/topic queue: waiting jobs, counts per status, and whether it is paused."""

    circle: str
    topic: str
    waiting: int
    new: int
    active: int
    done: int
    error: int
    paused: bool
    # Its limits over every worker (0 and "" for none), and why its jobs wait when a
    # limit holds them ("max_active 2", "rate 20/s"; empty otherwise).
    max_active: int = 0
    rate: str = ""
    held: str = ""

    @property
    def name(self) -> str:
        """`circle/topic`, as people write it."""
        return f"{self.circle}/{self.topic}"


@dataclass(frozen=True)
class ActionView:
    """One action of the actor registry, for templates, help and completion."""

    method: str
    doc: str
    params: tuple[tuple[str, str, str], ...]  # (name, type, default or "")
    template: str


@dataclass(frozen=True)
class RedisView:
    """What the server says of itself; with Sentinels, where the primary is.

    `primary` ("host:port") is empty without Sentinels; `replicas` is the primary's
    count of connected replicas; `failovers` counts the primary-address changes this
    engine saw since it started.
    """

    version: str
    clients: int
    memory_bytes: int
    ops_per_sec: int
    uptime_seconds: int
    primary: str = ""
    replicas: int = 0
    failovers: int = 0


@dataclass(frozen=True)
class WorkerView:
    """One watchdog (the engine's own or a `heroagent worker`) as the shared server sees it.

    `state` is "alive" while its heartbeat is fresh, "lost" once the heartbeat expired
    while its record or its jobs remain: those jobs are being (or will be) reclaimed. A
    lost worker stays listed for some minutes, then drops; a worker that stopped cleanly
    is gone at once. Times are the server's Unix times (0: unknown, for a worker older
    than records); `heartbeat_age` is seconds since the last heartbeat by the server's
    clock, so it holds whatever the clocks of the machines say. `running` is the length
    of its processing list (jobs it holds now); `busy` is its own count of busy slots
    at its last heartbeat.
    """

    worker: str
    state: Literal["alive", "lost"]
    host: str
    pid: int
    slots: int
    busy: int
    running: int
    started: float
    last_heartbeat: float
    heartbeat_age: float
    version: str

    @property
    def lost(self) -> bool:
        """True once its heartbeat expired."""
        return self.state == "lost"


@dataclass(frozen=True)
class HealthView:
    """Counts worth watching: this engine's job slots, damaged history reads, retries.

    `abandoned_slots` are held by a sync action's thread that outlived its job's timeout
    or cancel; they come free when the thread returns. `job_retries` (failed attempts
    scheduled to run again) and `dead_letters` count every worker's decisions that this
    engine persisted since its jobs service started.
    """

    slots: int
    busy_slots: int
    abandoned_slots: int
    damaged_reads: int
    job_retries: int
    dead_letters: int
    # Ended jobs purged from the history since start (by hand or by retention).
    purged: int
    # Jobs stored whose ENQUEUE the server did not take yet: queued once it answers.
    unqueued: int


@dataclass(frozen=True)
class Problem:
    """One problem of a params text: 1-based line and column, a message and a severity."""

    line: int
    col: int
    message: str
    severity: str = "error"
    end_col: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}, col {self.col}: {self.message}"


@dataclass(frozen=True)
class HighlightSpan:
    """A run of text to colour: 1-based line, 0-based `start`/`end` columns, and its kind.

    Kinds: action, key, value, arg, comment.
    """

    line: int
    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class ScheduleView:
    """A periodic job: when it fires (`cron` or `every`), the job it makes, and its state.

    `source` is "config" (a `[schedules.<name>]` table) or "runtime" (added through the
    API); times are Unix times, `last_fire` 0 before the first fire.
    """

    name: str
    cron: str
    every: str
    tz: str
    missed: str
    circle: str
    topic: str
    params: str
    params_type: str
    timeout: float
    source: str
    paused: bool
    last_fire: float
    next_fire: float
    fires: int
    last_job: int
