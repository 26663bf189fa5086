"""Persister: moves job versions reported through the Redis stream into OurDB, in batches."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.jobs import keys
from core.jobs.manager import JobManager
from core.jobs.model import ACTIVE_WAS, Job, active_before
from core.redis_server.backoff import Backoff

log = logging.getLogger(__name__)

CONSUMER = "engine"
BATCH = 1_000
BLOCK_MS = 1_000
# How often, at most, the persister asks whether the server still has our epoch and is
# the same server. A server that lost its data shows first as NOGROUP on the next read
# anyway; the epoch is the backstop. The question rides on a read that does not block
# (the same round trip), never on one of its own between a batch and the next read.
EPOCH_CHECK_SECONDS = 0.25
# While versions keep coming (LINGER_AFTER reads in a row that did not wait found some)
# and batches are small, the persister waits this long before its next read, so the next
# batch gathers more: the engine's cost is mostly per batch (a read, an OurDB sync, an
# index transaction, one EVAL), and a drain the engine keeps up with otherwise reads a
# few entries at a time. The wait runs while the batch's EVAL is on the wire (the next
# read starts once OurDB has the batch), so it costs the pipeline nothing. A read that
# had to wait proves nothing is queued behind it, so an idle engine never lingers: a
# version is persisted the moment it arrives.
LINGER_SECONDS = 0.002
LINGER_BELOW = BATCH // 10
LINGER_AFTER = 2
# A batch this big is decoded in a thread (about 10 us a version): hundreds of versions
# decoded on the loop would hold up whatever shares it (the terminal app's keys). A
# small one stays inline, where the hop would cost more than the work.
DECODE_INLINE_BELOW = 100
_ACTIVE_WAS = ACTIVE_WAS.encode()


# Stream entries as XREADGROUP gives them: (id, fields).
Entries = list[tuple[bytes, dict[bytes, bytes]]]
# A read's entries, and the replies of the epoch check that rode on it (epoch, INFO).
Read = tuple[Entries, tuple[object, dict[str, Any]] | None]


def _decode(entries: Entries) -> list[Job]:
    """The versions the entries carry, in order: an end may carry its `active` before it."""
    versions: list[Job] = []
    for _, fields in entries:
        job = Job.from_stream(fields)
        was = fields.get(_ACTIVE_WAS)
        if was is not None:
            versions.append(active_before(job, was))
        versions.append(job)
    return versions


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
        # Reads that waited LINGER_SECONDS for more versions to gather (a busy stream).
        self.lingers = 0
        # The Redis step of the last batch `run` persisted, while it is on the wire.
        self._redis_step: asyncio.Task[None] | None = None
        # Set when a batch's Redis step failed: its entries wait, pending, to be drained.
        self._step_failed = False

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
        """Persist until cancelled: first what an earlier engine left pending, then new.

        The next batch is read while the last one's sync and Redis step (its EVAL) are
        under way: once a batch is handed to OurDB, nothing about it decides what the
        next read brings, and a read, a group commit and an EVAL one after the other were
        the engine's whole cycle. Batches still go to OurDB one at a time, in stream
        order, and their EVALs one at a time, in the same order.

        Reads alternate between two kinds. After a read that found versions, the next one
        does not block: it tells whether more were already waiting (a backlog), and may
        carry the epoch check. Only after one that found nothing does the next block on
        the server, so a version arriving on an idle stream is read at once, with nothing
        sent before it.
        """
        await self.drain_pending()
        loop = asyncio.get_running_loop()
        # `prepare` has just read the server's epoch and id.
        next_check = loop.time() + EPOCH_CHECK_SECONDS
        block = False
        # Reads in a row that did not block and found versions already waiting.
        waiting_streak = 0
        backoff = Backoff()
        ahead: asyncio.Task[tuple[Read, bool]] | None = None

        def read_ahead(linger: bool, check: bool) -> None:
            nonlocal ahead
            ahead = asyncio.create_task(self._read_ahead(linger, check))

        try:
            while not self.stopping:
                try:
                    if self._step_failed:
                        # Its batch is in OurDB, but its ended jobs are still in Redis,
                        # its entries unacknowledged and its events untold: drained
                        # again now, after what the read ahead took (nothing twice).
                        await self._settle()
                        await self._persist_ahead(ahead)
                        ahead = None
                        block = False
                        await self.drain_pending()
                        self._step_failed = False
                    if ahead is None:
                        check = not block and loop.time() >= next_check
                        if check:
                            next_check = loop.time() + EPOCH_CHECK_SECONDS
                        entries, checked = await self._read(">", block=block, check=check)
                        waited = block
                    else:
                        # Taken off `ahead` first: should it have failed, the next turn
                        # reads afresh. Its entries, once read, are persisted below.
                        reading, ahead = ahead, None
                        (entries, checked), waited = await reading
                    if not entries:
                        # An empty read that did not block is followed by one that does;
                        # one that blocked and timed out (idle) by one that may check.
                        waiting_streak = 0
                        block = not waited
                    else:
                        waiting_streak = 0 if waited else waiting_streak + 1
                        block = False
                        # No read ahead when the server is checked after this batch:
                        # what a repair finds in OurDB must hold every version read so
                        # far. A check that is due rides on the read ahead instead, and
                        # is acted on once what that read brought is persisted.
                        then = None
                        if checked is None:
                            check = loop.time() >= next_check
                            if check:
                                next_check = loop.time() + EPOCH_CHECK_SECONDS
                            linger = waiting_streak >= LINGER_AFTER and len(entries) < LINGER_BELOW
                            then = functools.partial(read_ahead, linger, check)
                        # A batch read after a wait has nothing queued behind it (an
                        # idle stream): its next read goes out at once, beside the sync.
                        # Behind a backlog it waits for the sync, so the batch grows.
                        await self._persist(entries, read_next=then, early=waited, overlap=True)
                    if checked is not None:
                        await self._settle()
                        await self._checked(*checked)
                    backoff.reset()
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    await self._settle()
                    await self._persist_ahead(ahead)
                    ahead = None
                    block = False
                    await self._recover()
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                    if self.stopping:
                        return
                    await self._settle()
                    await self._persist_ahead(ahead)
                    ahead = None
                    log.warning("persister lost the server (%s); retrying", exc)
                    # Back on a server, check at once whether it is the same one.
                    next_check = 0.0
                    block = False
                    await backoff.wait()
        finally:
            if ahead is not None:
                # Entries it read before the cancel stay pending: `drain_new` takes them.
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await ahead
            # A step cut short leaves its entries pending too; one on the wire finishes.
            await self._settle()

    async def _read_ahead(self, linger: bool, check: bool) -> tuple[Read, bool]:
        """The read beside a batch's sync and EVAL, and whether it waited for its entries.

        First without blocking (are versions already waiting?); when none are, it blocks
        on the server, so a version added while the EVAL is on the wire is read at once.
        With `check`, the first read asks the epoch check too, and does not block after
        it: the check is acted on before the next read.
        """
        read = await self._read(">", block=False, linger=linger, check=check)
        if read[0] or check:
            return read, False
        return await self._read(">"), True

    async def _persist_ahead(self, ahead: asyncio.Task[tuple[Read, bool]] | None) -> None:
        """Before a repair or a retry: what a read ahead took goes to OurDB first.

        A repair rebuilds Redis from OurDB, so every version read by then must be there
        (else a job whose end was read and not stored would be queued again). The
        Redis step may fail: the entries then stay pending, and are drained again.
        """
        if ahead is None:
            return
        await asyncio.wait([ahead])
        if ahead.cancelled() or ahead.exception() is not None:
            return
        (entries, _), _ = ahead.result()
        if entries:
            with contextlib.suppress(RedisError, OSError):
                await self._persist(entries)

    async def _checked(self, epoch: object, info: dict[str, Any]) -> None:
        """Act on an epoch check's replies: rebuild a server that lost its data, repair another."""
        if epoch is None:
            await self._recover()
        elif str(info.get("run_id", "")) != self.server_id:
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
        """Persist whatever is waiting now, without blocking (used when stopping).

        Pending entries first: a read ahead that `run` was cancelled in, or a batch whose
        Redis step failed, left them delivered and not acknowledged.
        """
        await self.drain_pending()
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
        entries, _ = await self._read(start, block=block)
        if entries:
            await self._persist(entries, skip_duplicates=skip_duplicates)
        return len(entries)

    async def _read(
        self,
        start: str,
        *,
        block: bool = True,
        linger: bool = False,
        check: bool = False,
    ) -> Read:
        """Up to BATCH entries from `start` (">": new ones, blocking up to BLOCK_MS).

        With `check`, the epoch and the server's run id are asked in the same round trip;
        the caller acts on them once the entries are persisted.
        """
        if linger:
            self.lingers += 1
            await asyncio.sleep(LINGER_SECONDS)
        blocking = BLOCK_MS if block and start == ">" else None
        if check:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xreadgroup(
                    keys.STREAM_GROUP, CONSUMER, {keys.STREAM: start}, count=BATCH, block=blocking
                )
                pipe.get(keys.EPOCH)
                pipe.info("server")
                reply, epoch, info = await pipe.execute()
            checked: tuple[object, dict[str, Any]] | None = (epoch, info)
        else:
            reply = await self.redis.xreadgroup(
                keys.STREAM_GROUP, CONSUMER, {keys.STREAM: start}, count=BATCH, block=blocking
            )
            checked = None
        if not reply:
            return [], checked
        entries: Entries = cast(Any, reply)[0][1]
        return entries, checked

    async def _persist(
        self,
        entries: Entries,
        *,
        skip_duplicates: bool = False,
        read_next: Callable[[], object] | None = None,
        early: bool = False,
        overlap: bool = False,
    ) -> None:
        """Persist a batch; `read_next` is called once OurDB has it (`early`: once handed).

        With `overlap`, its Redis step is left running (see `_settle`): the OurDB write
        of the next batch goes on while it is on the wire, and each step still starts
        after the one before it has ended.

        A batch that holds an end someone waits for is never `early`: the read would run
        on the loop beside the sync, and delay the writer's start and the answer after
        it, for versions that are not there (it is read after a wait, on an idle stream).
        """
        if len(entries) < DECODE_INLINE_BELOW:
            versions = _decode(entries)
        else:
            versions = await asyncio.to_thread(_decode, entries)
        if early and self.manager.awaited(versions):
            early = False
        ids = [entry_id for entry_id, _ in entries]
        # The entries are acknowledged in the round trip that drops the ended jobs, after
        # OurDB has every version: one round trip per batch instead of two.
        step = await self.manager.persist_durably(
            versions,
            skip_duplicates=skip_duplicates,
            acknowledge=ids,
            after_end=self.after_change,
            on_handed=read_next if early else None,
        )
        if read_next is not None and not early:
            read_next()
        await self._settle()
        if step is None:
            return
        if overlap:
            self._redis_step = asyncio.create_task(step)
        else:
            await step

    async def _settle(self) -> None:
        """Wait for the Redis step left running by the last batch.

        One that failed for Redis only leaves its entries pending, to be drained again
        (as any failed step does); whatever broke it shows at the next read too.
        """
        step, self._redis_step = self._redis_step, None
        if step is None:
            return
        try:
            await step
        except (RedisError, OSError) as exc:
            self._step_failed = True
            log.warning("a batch's Redis step failed (%s): its entries are drained again", exc)
