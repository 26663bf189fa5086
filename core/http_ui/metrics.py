"""Job throughput, rates and latency computed from engine events, and Prometheus text output."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from core.api import HealthView, QueueView, ScheduleView, WorkerView
from core.events import Event, JobStateChanged

# Seconds of completions kept for rates; a minute is what dashboards show, five smooth it.
WINDOW = 300.0
RATE_WINDOW = 60.0
# Completions remembered at most (bounded memory even at thousands of jobs per second).
MAX_COMPLETIONS = 200_000
# Jobs whose "new" time is remembered while they wait or run.
MAX_PENDING = 200_000
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ENDED = ("done", "error")


class JobStats:
    """Counts completions per queue and times jobs from `new` to ended, from the event stream."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._completions: deque[tuple[float, str]] = deque(maxlen=MAX_COMPLETIONS)
        self._pending: OrderedDict[int, float] = OrderedDict()
        self.ended_total: dict[str, int] = dict.fromkeys(ENDED, 0)
        self.bucket_counts = [0] * len(LATENCY_BUCKETS)
        self.latency_count = 0
        self.latency_sum = 0.0

    def observe(self, events: Iterable[Event]) -> None:
        """Take in a batch of engine events (others than job state changes are ignored)."""
        for event in events:
            if isinstance(event, JobStateChanged):
                self._job(event)

    def _job(self, event: JobStateChanged) -> None:
        if event.status == "new":
            self._pending[event.job_id] = event.ts
            self._pending.move_to_end(event.job_id)
            if len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            return
        if event.status not in ENDED:
            return
        self.ended_total[event.status] += 1
        self._completions.append((event.ts, f"{event.circle}/{event.topic}"))
        started = self._pending.pop(event.job_id, None)
        if started is not None:
            self._latency(max(0.0, event.ts - started))

    def _latency(self, seconds: float) -> None:
        self.latency_count += 1
        self.latency_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.bucket_counts[i] += 1
                break

    def _trim(self) -> None:
        horizon = self.clock() - WINDOW
        while self._completions and self._completions[0][0] < horizon:
            self._completions.popleft()

    def rate(self, queue: str | None = None) -> float:
        """Jobs ended per second over the last minute, for one `circle/topic` or all."""
        self._trim()
        since = self.clock() - RATE_WINDOW
        count = sum(
            1 for ts, name in reversed(self._completions) if ts >= since and queue in (None, name)
        )
        return count / RATE_WINDOW

    def rates(self) -> dict[str, float]:
        """Jobs ended per second over the last minute, per `circle/topic`."""
        self._trim()
        since = self.clock() - RATE_WINDOW
        counts: dict[str, int] = {}
        for ts, name in self._completions:
            if ts >= since:
                counts[name] = counts.get(name, 0) + 1
        return {name: n / RATE_WINDOW for name, n in counts.items()}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_prometheus(
    stats: JobStats,
    queues: list[QueueView],
    services: dict[str, str],
    health: HealthView,
    schedules: Iterable[ScheduleView] = (),
    workers: Iterable[WorkerView] = (),
) -> str:
    """The Prometheus text exposition (format 0.0.4) of jobs, queues, rates and services."""
    out: list[str] = []

    def metric(name: str, kind: str, doc: str) -> None:
        out.append(f"# HELP {name} {doc}")
        out.append(f"# TYPE {name} {kind}")

    metric("heroagent_jobs", "gauge", "Jobs in the history by queue and status.")
    for q in queues:
        labels = f'circle="{_label(q.circle)}",topic="{_label(q.topic)}"'
        for status, count in (("new", q.new), ("active", q.active), ("done", q.done)):
            out.append(f'heroagent_jobs{{{labels},status="{status}"}} {count}')
        out.append(f'heroagent_jobs{{{labels},status="error"}} {q.error}')
    metric("heroagent_queue_depth", "gauge", "Jobs waiting in a queue.")
    for q in queues:
        labels = f'circle="{_label(q.circle)}",topic="{_label(q.topic)}"'
        out.append(f"heroagent_queue_depth{{{labels}}} {q.waiting}")
    metric("heroagent_jobs_ended_total", "counter", "Jobs ended since this UI service started.")
    for status, count in stats.ended_total.items():
        out.append(f'heroagent_jobs_ended_total{{status="{status}"}} {count}')
    metric("heroagent_throughput_jobs_per_second", "gauge", "Jobs ended per second, last minute.")
    out.append(f"heroagent_throughput_jobs_per_second {_num(stats.rate())}")
    metric(
        "heroagent_job_latency_seconds", "histogram", "Seconds from a job's creation to its end."
    )
    cumulative = 0
    for bound, count in zip(LATENCY_BUCKETS, stats.bucket_counts, strict=True):
        cumulative += count
        out.append(f'heroagent_job_latency_seconds_bucket{{le="{bound}"}} {cumulative}')
    out.append(f'heroagent_job_latency_seconds_bucket{{le="+Inf"}} {stats.latency_count}')
    out.append(f"heroagent_job_latency_seconds_sum {_num(stats.latency_sum)}")
    out.append(f"heroagent_job_latency_seconds_count {stats.latency_count}")
    metric("heroagent_slots", "gauge", "Job slots of this engine's watchdog, by use.")
    out.append(f'heroagent_slots{{use="total"}} {health.slots}')
    out.append(f'heroagent_slots{{use="busy"}} {health.busy_slots}')
    out.append(f'heroagent_slots{{use="abandoned"}} {health.abandoned_slots}')
    metric(
        "heroagent_damaged_reads_total", "counter", "History records that could not be read back."
    )
    out.append(f"heroagent_damaged_reads_total {health.damaged_reads}")
    metric(
        "heroagent_job_retries_total",
        "counter",
        "Failed attempts scheduled to run again, since the jobs service started.",
    )
    out.append(f"heroagent_job_retries_total {health.job_retries}")
    metric(
        "heroagent_dead_letters_total",
        "counter",
        "Jobs that ended in error after their last allowed attempt, since the jobs service "
        "started.",
    )
    out.append(f"heroagent_dead_letters_total {health.dead_letters}")
    metric(
        "heroagent_jobs_purged_total",
        "counter",
        "Ended jobs deleted from the history since start (by hand or by retention).",
    )
    out.append(f"heroagent_jobs_purged_total {health.purged}")
    metric(
        "heroagent_jobs_unqueued",
        "gauge",
        "Jobs stored whose enqueue the Redis server did not take; queued once it answers.",
    )
    out.append(f"heroagent_jobs_unqueued {health.unqueued}")
    metric("heroagent_service_up", "gauge", "1 when a service is running.")
    for name, state in services.items():
        up = 1 if state == "running" else 0
        out.append(f'heroagent_service_up{{service="{_label(name)}",state="{state}"}} {up}')
    metric(
        "heroagent_schedule_fires_total",
        "counter",
        "Jobs this engine created for a schedule's fires (kept across restarts).",
    )
    for schedule in schedules:
        out.append(
            f'heroagent_schedule_fires_total{{schedule="{_label(schedule.name)}"}} {schedule.fires}'
        )
    metric(
        "heroagent_workers",
        "gauge",
        "Watchdogs on the shared server: alive (fresh heartbeat) or lost (heartbeat expired).",
    )
    counts = {"alive": 0, "lost": 0}
    for worker in workers:
        counts[worker.state] += 1
    for state, count in counts.items():
        out.append(f'heroagent_workers{{state="{state}"}} {count}')
    return "\n".join(out) + "\n"
