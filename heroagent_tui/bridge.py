"""One worker that turns engine events into coalesced batches on a Textual signal."""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from core.events import (
    Event,
    JobLogLine,
    JobProgress,
    JobsPurged,
    JobStateChanged,
    LogEmitted,
    ServiceStateChanged,
)
from core.events.bus import Subscription

# A batch is published at most this often, so a burst of events costs a few redraws.
BATCH_SECONDS = 0.05
# Jobs whose last status the bridge remembers, to turn events into per-queue deltas.
TRACKED_JOBS = 100_000
ENDED = ("done", "error")


@dataclass
class EngineBatch:
    """Everything that happened since the last batch, already coalesced."""

    services: dict[str, ServiceStateChanged] = field(default_factory=dict)
    jobs: dict[int, JobStateChanged] = field(default_factory=dict)
    """The newest event of each job that changed."""
    queue_deltas: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(circle, topic, status) → change of that count."""
    queues_unsure: bool = False
    """Some job moved from a status the bridge never saw: counts need a fresh snapshot."""
    ended: int = 0
    """Jobs that reached done or error."""
    latencies: list[float] = field(default_factory=list)
    """Seconds from `new` to done/error of the jobs seen from the start."""
    job_logs: list[JobLogLine] = field(default_factory=list)
    progress: dict[int, JobProgress] = field(default_factory=dict)
    """The newest progress of each job that reported some."""
    logs: list[LogEmitted] = field(default_factory=list)
    purged: set[int] = field(default_factory=set)
    """Jobs deleted from the history: lists drop their rows."""
    dropped: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    """Wall-clock times of the oldest and newest event, to line batches up with snapshots."""


class _JobTracker:
    """Bounded memory of each job's last status and when it was created."""

    def __init__(self, size: int = TRACKED_JOBS) -> None:
        self._size = size
        self._last: OrderedDict[int, tuple[str, float]] = OrderedDict()

    def apply(self, event: JobStateChanged, batch: EngineBatch) -> None:
        previous = self._last.pop(event.job_id, None)
        batch.queue_deltas[(event.circle, event.topic, event.status)] += 1
        if previous is not None:
            batch.queue_deltas[(event.circle, event.topic, previous[0])] -= 1
        elif event.status != "new":
            batch.queues_unsure = True
        born = previous[1] if previous else (event.ts if event.status == "new" else 0.0)
        if event.status in ENDED:
            batch.ended += 1
            if born:
                batch.latencies.append(max(0.0, event.ts - born))
        else:
            born = event.ts if event.status == "new" else born
        self._last[event.job_id] = (event.status, born)
        if len(self._last) > self._size:
            self._last.popitem(last=False)

    def forget(self, job_ids: tuple[int, ...]) -> None:
        """Purged jobs: they never change again."""
        for job_id in job_ids:
            self._last.pop(job_id, None)


class EngineBridge:
    """Reads the engine's event subscription and publishes `EngineBatch`es."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self._tracker = _JobTracker()

    def collect(self, events: list[Event]) -> EngineBatch:
        """Coalesce a list of events into one batch."""
        batch = EngineBatch(dropped=self.subscription.dropped)
        if events:
            batch.first_ts = min(e.ts for e in events)
            batch.last_ts = max(e.ts for e in events)
        for event in events:
            if isinstance(event, JobStateChanged):
                batch.jobs.pop(event.job_id, None)
                batch.jobs[event.job_id] = event
                self._tracker.apply(event, batch)
            elif isinstance(event, JobLogLine):
                batch.job_logs.append(event)
                line = LogEmitted(
                    ts=event.ts, source=f"job {event.job_id}", level="info", message=event.line
                )
                batch.logs.append(line)
            elif isinstance(event, JobProgress):
                batch.progress[event.job_id] = event
            elif isinstance(event, JobsPurged):
                # Their older events in this batch are moot: the rows go, not update.
                for job_id in event.job_ids:
                    batch.jobs.pop(job_id, None)
                    batch.progress.pop(job_id, None)
                batch.purged.update(event.job_ids)
                self._tracker.forget(event.job_ids)
            elif isinstance(event, ServiceStateChanged):
                batch.services[event.service] = event
            elif isinstance(event, LogEmitted):
                batch.logs.append(event)
        return batch

    async def batches(self) -> list[Event]:
        """The next events, gathered for a short window so bursts coalesce."""
        events = await self.subscription.get_batch()
        await asyncio.sleep(BATCH_SECONDS)
        return events + self.subscription.drain()

    def close(self) -> None:
        """Stop receiving events."""
        self.subscription.close()
