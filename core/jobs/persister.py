"""Persister: moves job versions reported through the Redis stream into OurDB, in batches."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.jobs import keys
from core.jobs.manager import JobManager
from core.jobs.model import Job
from core.redis_server.backoff import Backoff

log = logging.getLogger(__name__)

CONSUMER = "engine"
BATCH = 1_000
BLOCK_MS = 1_000
# How often, at most, a busy persister asks whether the server still has our epoch. A
# server that lost its data shows first as NOGROUP on the next read anyway; the epoch is
# the backstop, and a GET after every small batch was a round trip per batch.
EPOCH_CHECK_SECONDS = 0.25
# While versions keep coming (two reads in a row found some) and batches are small, the
# persister waits this long before its next read, so the next batch gathers more: the
# engine's cost is mostly per batch (a read, an OurDB sync, an index transaction, one
# EVAL), and a drain the engine keeps up with otherwise reads a few entries at a time.
# A version that arrives after a quiet spell is persisted at once; at most this much is
# added to the others.
LINGER_SECONDS = 0.002
LINGER_BELOW = BATCH // 10
# A batch this big is decoded in a thread (about 10 us a version): hundreds of versions
# decoded on the loop would hold up whatever shares it (the terminal app's keys). A
# small one stays inline, where the hop would cost more than the work.
DECODE_INLINE_BELOW = 100


def _decode(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Job]:
    return [Job.from_stream(fields) for _, fields in entries]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Persister:
    """The one consumer of `heroagent:stream`; an entry is acknowledged after OurDB has it.

    It also keeps the epoch key: when the key vanishes (FLUSHALL, a restart without
    persistence), `on_data_lost` runs so the engine can rebuild Redis from OurDB. And it
    watches the server's run id: another one (a Sentinel failover promoted a replica, or
    the server restarted from its AOF) may lack the last writes the old one acknowledged,
    so `on_server_changed` runs to repair Redis from OurDB, and from then on a version
    reported after its job's durable end is dropped (a job the new server still had
    queued may run twice; its history ends once).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        manager: JobManager,
        on_data_lost: Callable[[], Awaitable[None]],
        on_server_changed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.manager = manager
        self.on_data_lost = on_data_lost
        self.on_server_changed = on_server_changed or on_data_lost
        self.epoch = secrets.token_hex(8)
        self.stopping = False
        self.server_id: str | None = None
        # Set at the first change of server, for the rest of the run.
        self.after_change = False
        # Changes of server repaired (counted once each repair is complete).
        self.server_changes = 0

    async def prepare(self) -> None:
        """Create the consumer group and mark the server with our epoch."""
        try:
            await self.redis.xgroup_create(keys.STREAM, keys.STREAM_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self.redis.set(keys.EPOCH, self.epoch)
        self.server_id = await self._server_id()

    async def _server_id(self) -> str:
        info = await self.redis.info("server")
        return str(info.get("run_id", ""))

    async def run(self) -> None:
        """Persist until cancelled: first what an earlier engine left pending, then new."""
        await self.drain_pending()
        loop = asyncio.get_running_loop()
        next_check = 0.0
        previous = 0
        backoff = Backoff()
        while not self.stopping:
            try:
                read = await self._step(">")
                if previous and 0 < read < LINGER_BELOW:
                    await asyncio.sleep(LINGER_SECONDS)
                previous = read
                if not read or loop.time() >= next_check:
                    next_check = loop.time() + EPOCH_CHECK_SECONDS
                    await self._check_server()
                backoff.reset()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._recover()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if self.stopping:
                    return
                log.warning("persister lost the server (%s); retrying", exc)
                # Back on a server, check at once whether it is the same one.
                next_check = 0.0
                await backoff.wait()

    async def _check_server(self) -> None:
        if await self.redis.get(keys.EPOCH) is None:
            await self._recover()
        elif await self._server_id() != self.server_id:
            await self._server_changed()

    async def _server_changed(self) -> None:
        log.warning("the Redis server changed (a failover or a restart); repairing it from OurDB")
        self.after_change = True
        try:
            await self.prepare()
            await self.drain_pending()
            await self.on_server_changed()
        except BaseException:
            # Cut short (the server went away again): the next check repairs again.
            self.server_id = None
            raise
        self.server_changes += 1

    async def drain_new(self) -> None:
        """Persist whatever is waiting now, without blocking (used when stopping)."""
        while await self._step(">", block=False):
            pass

    async def drain_pending(self) -> None:
        """Persist entries delivered before but never acknowledged (we died mid-way)."""
        while await self._step("0", skip_duplicates=True):
            pass

    async def _recover(self) -> None:
        log.warning("the Redis server lost its data; rebuilding queues from OurDB")
        if await self._server_id() != self.server_id:
            # Another server too (a failover to a replica that had not even our group):
            # reports of jobs whose end is durable may still come from its workers.
            self.after_change = True
        await self.prepare()
        await self.on_data_lost()

    async def _step(self, start: str, *, skip_duplicates: bool = False, block: bool = True) -> int:
        reply = await self.redis.xreadgroup(
            keys.STREAM_GROUP,
            CONSUMER,
            {keys.STREAM: start},
            count=BATCH,
            block=BLOCK_MS if block and start == ">" else None,
        )
        if not reply:
            return 0
        entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(Any, reply)[0][1]
        if not entries:
            return 0
        if len(entries) < DECODE_INLINE_BELOW:
            versions = _decode(entries)
        else:
            versions = await asyncio.to_thread(_decode, entries)
        ids = [entry_id for entry_id, _ in entries]
        # The entries are acknowledged in the round trip that drops the ended jobs, after
        # OurDB has every version: one round trip per batch instead of two.
        await self.manager.persist(
            versions,
            skip_duplicates=skip_duplicates,
            acknowledge=ids,
            after_end=self.after_change,
        )
        return len(entries)
