"""The event relay: other processes' log lines and progress onto the bus, never this one's."""

from __future__ import annotations

from typing import Any, cast

import orjson

from core.events import JobProgress, job_progress_wire
from core.events.bus import EventBus
from core.jobs.manager import _events_message
from core.jobs.model import Job
from core.jobs.relay import EventRelay


def test_relays_other_processes_events_and_drops_this_ones_batches() -> None:
    bus = EventBus()
    relay = EventRelay(bus, cast(Any, None))  # _relay reads no Redis
    with bus.subscribe() as seen:
        jobs = [Job(job_id=i, topic="t", params="p") for i in range(1, 4)]
        relay._relay(_events_message(jobs))  # this process's batch, as ENQUEUE publishes it
        relay._relay(orjson.dumps(job_progress_wire(7, 0.5, "half")))  # this process's too
        other = {**job_progress_wire(8, 0.25, "a quarter"), "origin": "elsewhere"}
        relay._relay(orjson.dumps([other, {**other, "id": 9}]))
        events = seen.drain()
    assert relay.relayed == 2
    assert [(e.job_id, e.fraction) for e in events if isinstance(e, JobProgress)] == [
        (8, 0.25),
        (9, 0.25),
    ]
