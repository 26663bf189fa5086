"""EventRelay: events that other processes publish over Redis, onto this engine's bus."""

from __future__ import annotations

import logging

import orjson
import redis.asyncio as aioredis

from core.events import PROCESS_ORIGIN, events_from_wire
from core.events.bus import EventBus
from core.jobs import keys
from core.redis_server.channels import follow_channel
from core.redis_server.service import RedisService
from core.services import Service

log = logging.getLogger(__name__)

# How long one read of the channel waits before it looks at `stopping` again.
READ_SECONDS = 1.0
# How an array of events this process wrote (compact JSON, origin last) ends: a
# 1,000-job submit's is some 100 KB that would be decoded only to be dropped.
_OWN_BATCH_END = f'"origin":"{PROCESS_ORIGIN}"}}]'.encode()


class EventRelay(Service):
    """Brings live reports of remote workers (log lines, progress) to the local bus.

    So what a `heroagent worker` elsewhere reports reaches the TUI and the HTTP UI like
    local events do.

    Messages this process published itself are skipped: they are on the bus already.
    """

    name = "relay"

    def __init__(self, bus: EventBus, redis: RedisService) -> None:
        super().__init__(bus)
        self.redis_service = redis
        self.relayed = 0
        self._client: aioredis.Redis | None = None

    def detail(self) -> str:
        """Events relayed so far."""
        return f"{self.relayed} events from other processes"

    async def _start(self) -> None:
        self._client = self.redis_service.loop_client()
        self.supervise("listen", self._listen)

    async def _stop(self) -> None:
        await self.stop_supervised()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _listen(self) -> None:
        await follow_channel(
            self._channel_client, keys.EVENTS_CHANNEL, self._relay, read_seconds=READ_SECONDS
        )

    def _channel_client(self) -> aioredis.Redis:
        assert self._client is not None
        return self._client

    def _relay(self, data: object) -> None:
        if isinstance(data, bytes) and data.endswith(_OWN_BATCH_END):
            return  # a batch's events from this process (on the bus already): not decoded
        try:
            decoded = orjson.loads(data) if isinstance(data, bytes | str) else None
        except orjson.JSONDecodeError:
            return
        # One message may carry a whole batch of events (an array).
        for event in events_from_wire(decoded):
            self.relayed += 1
            self.bus.publish(event)
