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
# Jobs whose last status the bridge remembers, to turn events into per-queue deltas:
# four times the jobs in flight at full flow (a few thousand a second, each a second or
# two from new to its end). Each costs some 240 bytes the app keeps; a job forgotten
# before its next event leaves a count that drifts until the Queues view's snapshot
# after the burst.
TRACKED_JOBS = 20_000
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

    def apply(self, events: list[JobStateChanged], batch: EngineBatch) -> None:
        """Count the state changes `events` (oldest first) make, into `batch`.

        At full flow some 9,000 a second, on the app's loop: one pass with the lookups
        bound once (about a third of the time an event's own call took).
        """
        last, size = self._last, self._size
        deltas = batch.queue_deltas
        latencies = batch.latencies
        get, pop = deltas.get, last.pop
        ended = 0
        unsure = False
        for event in events:
            status = event.status
            previous = pop(event.job_id, None)
            queue = (event.circle, event.topic, status)
            deltas[queue] = get(queue, 0) + 1
            if previous is not None:
                was = (event.circle, event.topic, previous[0])
                deltas[was] = get(was, 0) - 1
                born = previous[1]
            elif status == "new":
                born = event.ts
            else:
                unsure = True
                born = 0.0
            if status in ENDED:
                ended += 1
                if born:
                    latencies.append(max(0.0, event.ts - born))
            elif status == "new":
                born = event.ts
            last[event.job_id] = (status, born)
        while len(last) > size:
            last.popitem(last=False)
        batch.ended += ended
        batch.queues_unsure = batch.queues_unsure or unsure

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
            stamps = [e.ts for e in events]
            batch.first_ts, batch.last_ts = min(stamps), max(stamps)
        states = [event for event in events if type(event) is JobStateChanged]
        if states:
            jobs = batch.jobs
            pop = jobs.pop
            for state in states:
                # Moved to the end: the newest event of each job, in the order they came.
                pop(state.job_id, None)
                jobs[state.job_id] = state
            self._tracker.apply(states, batch)
        if len(states) == len(events):
            return batch
        for event in events:
            if type(event) is JobStateChanged:
                continue
            if isinstance(event, JobLogLine):
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
