"""The events relay: other processes' log lines and progress onto the bus, never our own."""

from __future__ import annotations

import json
from typing import cast

import orjson

from core.events import PROCESS_ORIGIN, JobLogLine, job_log_wire
from core.events.bus import EventBus
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
