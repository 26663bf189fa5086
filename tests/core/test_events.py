"""The event bus: bounded queues that drop the oldest, coalescing where asked, never blocking."""

from __future__ import annotations

import json

from core.events import (
    PROCESS_ORIGIN,
    EventBus,
    JobLogLine,
    JobStateChanged,
    LogEmitted,
    event_from_wire,
    events_from_wire,
    job_log_wire,
    wire_messages,
)


def state(job_id: int, status: str) -> JobStateChanged:
    return JobStateChanged(job_id=job_id, circle="c", topic="t", status=status)


def test_a_full_subscription_drops_the_oldest_and_counts_them() -> None:
    bus = EventBus()
    with bus.subscribe(maxsize=3) as events:
        for n in range(5):
            bus.publish(LogEmitted(source="s", level="info", message=f"m{n}"))
        assert events.dropped == 2
        kept = events.drain()
    assert [e.message for e in kept if isinstance(e, LogEmitted)] == ["m2", "m3", "m4"]


def test_a_coalescing_subscription_keeps_each_jobs_newest_state() -> None:
    bus = EventBus()
    with bus.subscribe(coalesce=True) as latest, bus.subscribe() as every:
        for status in ("new", "active", "done"):
            bus.publish(state(1, status))
        bus.publish(state(2, "new"))
        bus.publish(JobLogLine(job_id=1, line="a"))
        bus.publish(JobLogLine(job_id=1, line="b"))
        coalesced = latest.drain()
        stepwise = every.drain()
    assert [(e.job_id, e.status) for e in coalesced if isinstance(e, JobStateChanged)] == [
        (1, "done"),
        (2, "new"),
    ]
    # Log lines are never merged: each line is content, not a state.
    assert [e.line for e in coalesced if isinstance(e, JobLogLine)] == ["a", "b"]
    assert [e.status for e in stepwise if isinstance(e, JobStateChanged)] == [
        "new",
        "active",
        "done",
        "new",
    ]


def test_a_closed_subscription_gets_nothing_and_publishing_goes_on() -> None:
    bus = EventBus()
    gone = bus.subscribe()
    stays = bus.subscribe()
    gone.close()
    bus.publish(state(1, "new"))
    assert gone.drain() == []
    assert len(stays.drain()) == 1


def test_log_lines_cross_processes_but_not_back_to_their_sender() -> None:
    mine = job_log_wire(7, "hello")
    assert event_from_wire(json.loads(json.dumps(mine))) is None
    theirs = {**mine, "origin": "a-worker-elsewhere"}
    event = event_from_wire(theirs)
    assert isinstance(event, JobLogLine)
    assert (event.job_id, event.line) == (7, "hello")
    assert mine["origin"] == PROCESS_ORIGIN
    for junk in ({}, {"type": "log"}, {"type": "log", "id": "7", "line": "x"}, {"type": "x"}):
        assert event_from_wire({**junk, "origin": "elsewhere"}) is None


def test_a_message_may_carry_a_batch_of_events() -> None:
    theirs = [{**job_log_wire(i, f"line {i}"), "origin": "elsewhere"} for i in (1, 2)]
    mine = job_log_wire(3, "mine")
    batch = [*theirs, mine, "junk", {"type": "job", "id": 4, "status": "done"}]
    events = events_from_wire(json.loads(json.dumps(batch)))
    assert [(e.job_id, e.line) for e in events if isinstance(e, JobLogLine)] == [
        (1, "line 1"),
        (2, "line 2"),
    ]
    assert len(events) == 2
    assert [e.job_id for e in events_from_wire(theirs[0]) if isinstance(e, JobLogLine)] == [1]
    assert wire_messages("junk") == []
    assert wire_messages(batch) == [*theirs, mine, batch[-1]]
