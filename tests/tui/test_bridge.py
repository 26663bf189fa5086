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
