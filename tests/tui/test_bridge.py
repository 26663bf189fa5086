"""The bridge's batches: what a purge event does to the events around it."""

from __future__ import annotations

from core.events import JobsPurged, JobStateChanged
from core.events.bus import EventBus
from heroagent_tui.bridge import EngineBridge


def _changed(job_id: int, status: str) -> JobStateChanged:
    return JobStateChanged(job_id=job_id, circle="c", topic="t", status=status)


def test_a_purge_drops_the_older_events_of_its_jobs_from_the_batch() -> None:
    bus = EventBus()
    bridge = EngineBridge(bus.subscribe())
    events = [
        _changed(1, "done"),
        _changed(2, "done"),
        JobsPurged(job_ids=(1, 7)),
        _changed(3, "new"),
    ]
    batch = bridge.collect(events)
    assert batch.purged == {1, 7}
    # Job 1's row goes; an update of it would bring it back.
    assert sorted(batch.jobs) == [2, 3]
    bridge.close()


def test_batches_count_each_queues_changes_and_each_ended_jobs_latency() -> None:
    bus = EventBus()
    bridge = EngineBridge(bus.subscribe())

    def state(job_id: int, status: str, ts: float) -> JobStateChanged:
        return JobStateChanged(job_id=job_id, circle="c", topic="t", status=status, ts=ts)

    first = bridge.collect([state(1, "new", 1.0), state(1, "active", 2.0), state(2, "new", 3.0)])
    assert dict(first.queue_deltas) == {("c", "t", "new"): 1, ("c", "t", "active"): 1}
    assert (first.ended, first.latencies, first.queues_unsure) == (0, [], False)
    assert list(first.jobs) == [1, 2]
    assert (first.first_ts, first.last_ts) == (1.0, 3.0)
    # Job 9 was never seen new: its counts need a fresh snapshot, and its latency is unknown.
    second = bridge.collect([state(1, "done", 5.0), state(2, "error", 7.0), state(9, "done", 8.0)])
    assert dict(second.queue_deltas) == {
        ("c", "t", "done"): 2,
        ("c", "t", "active"): -1,
        ("c", "t", "error"): 1,
        ("c", "t", "new"): -1,
    }
    assert (second.ended, second.latencies, second.queues_unsure) == (3, [4.0, 4.0], True)
    bridge.close()
