"""The event bus: bounded queues that drop the oldest, coalescing where asked, never blocking."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import pytest

from core.events import (
    MAX_PROGRESS_MESSAGE,
    PROCESS_ORIGIN,
    JobLogLine,
    JobProgress,
    JobStateChanged,
    LogEmitted,
    clean_progress,
    event_from_wire,
    events_from_wire,
    job_log_wire,
    job_progress_wire,
    wire_messages,
)
from core.events.bus import EventBus


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


def test_progress_is_clamped_and_its_message_capped() -> None:
    assert clean_progress(0.5, "half") == (0.5, "half")
    assert clean_progress(3) == (1.0, "")
    assert clean_progress(-0.1) == (0.0, "")
    assert clean_progress(math.inf) == (1.0, "")
    fraction, message = clean_progress(1, "x" * 10_000)
    assert fraction == 1.0
    assert len(message) == MAX_PROGRESS_MESSAGE
    assert message.endswith("…")
    assert clean_progress(0.5, "two\nlines\x1b[31m") == (0.5, "two lines [31m")


@pytest.mark.parametrize(
    ("fraction", "message", "error", "text"),
    [
        (math.nan, "", ValueError, "got NaN"),
        ("0.5", "", TypeError, "fraction must be a number from 0 to 1, got '0.5'"),
        (True, "", TypeError, "got True"),
        (None, "", TypeError, "got None"),
        (0.5, 7, TypeError, "message must be a string, got int"),
    ],
)
def test_progress_that_is_not_a_number_is_refused_clearly(
    fraction: object, message: object, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        clean_progress(fraction, message)


def test_progress_crosses_processes_checked_again() -> None:
    mine = job_progress_wire(7, 0.25, "a quarter")
    assert event_from_wire(json.loads(json.dumps(mine))) is None
    event = event_from_wire({**mine, "origin": "elsewhere"})
    assert isinstance(event, JobProgress)
    assert (event.job_id, event.fraction, event.message) == (7, 0.25, "a quarter")
    # Another process's numbers are clamped and capped as the action's own are.
    far = event_from_wire({**mine, "origin": "elsewhere", "fraction": 9, "message": "m" * 999})
    assert isinstance(far, JobProgress)
    assert far.fraction == 1.0
    assert len(far.message) == MAX_PROGRESS_MESSAGE
    for junk in ({"fraction": "x"}, {"fraction": None}, {"message": 5}, {"id": "7"}):
        assert event_from_wire({**mine, "origin": "elsewhere", **junk}) is None


def test_a_coalescing_subscription_keeps_each_jobs_newest_progress() -> None:
    bus = EventBus()
    with bus.subscribe(coalesce=True) as latest:
        for n in range(5):
            bus.publish(JobProgress(job_id=1, fraction=n / 4))
        bus.publish(JobProgress(job_id=2, fraction=0.5))
        kept = latest.drain()
    assert [(e.job_id, e.fraction) for e in kept if isinstance(e, JobProgress)] == [
        (1, 1.0),
        (2, 0.5),
    ]


async def test_a_reader_on_another_loop_gets_every_event_a_thread_publishes_in_order() -> None:
    bus = EventBus()
    count = 20_000
    with bus.subscribe(maxsize=count, loop=asyncio.get_running_loop()) as events:

        def publish() -> None:
            for n in range(count):
                bus.publish(state(n, "new"))

        publisher = threading.Thread(target=publish)
        got: list[int] = []
        batches = 0
        publisher.start()
        try:
            while len(got) < count:
                batch = await asyncio.wait_for(events.get_batch(), 10)
                batches += 1
                got.extend(e.job_id for e in batch if isinstance(e, JobStateChanged))
        finally:
            publisher.join()
    assert got == list(range(count))
    assert events.dropped == 0
    # Woken once per batch taken, not once per event.
    assert batches < count
