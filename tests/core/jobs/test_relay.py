"""The events relay: other processes' log lines and progress onto the bus, never our own."""

from __future__ import annotations

import json
from typing import Any, cast

import orjson

from core.events import PROCESS_ORIGIN, JobLogLine, JobProgress, job_log_wire, job_progress_wire
from core.events.bus import EventBus
from core.jobs.manager import _events_message
from core.jobs.model import Job
from core.jobs.relay import EventRelay
from core.redis_server.service import RedisService


def test_only_other_processes_messages_reach_the_bus() -> None:
    bus = EventBus()
    # `_relay` is the relay's whole handling of a message; it never touches the server.
    relay = EventRelay(bus, cast(RedisService, None))
    heard = bus.subscribe()
    ours = job_log_wire(1, "mine")
    other = {**ours, "id": 2, "line": f'says "origin":"{PROCESS_ORIGIN}"', "origin": "elsewhere"}
    # Ours in either spacing (orjson's, json's), as bytes and as text: all dropped.
    for message in (orjson.dumps(ours), json.dumps(ours), json.dumps(ours).encode()):
        relay._relay(message)
    assert relay.relayed == 0
    # Another's, though its text quotes our origin: relayed, from bytes and from text.
    relay._relay(orjson.dumps(other))
    relay._relay(json.dumps(other))
    assert relay.relayed == 2
    events = heard.drain()
    assert [(type(e), getattr(e, "job_id", None), getattr(e, "line", None)) for e in events] == [
        (JobLogLine, 2, other["line"])
    ] * 2


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
