"""HistoryService: the job history (OurDB, its index, the manager) and its persister."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Unpack, cast

import redis.asyncio as aioredis

from core.config import Config
from core.events import JobFilter
from core.events.bus import EventBus
from core.heroscript.tools import ScriptTools
from core.jobs import keys
from core.jobs.index import JobIndex
from core.jobs.manager import MAX_PARAMS_BYTES, JobManager
from core.jobs.model import Job, JobStatus
from core.jobs.persister import Persister
from core.jobs.promoter import Promoter
from core.jobs.purge import PurgeOptions, purge
from core.jobs.queue import JobQueue
from core.jobs.retention import RetentionSweep
from core.jobs.validation import make_validator
from core.ourdb import AsyncOurDB, OurDBError
from core.redis_server.blocking import cancel_blocked
from core.redis_server.service import RedisService
from core.services import JobsPartService, ServiceStartError

REINDEX_BATCH = 2_000
# Ids whose index row is checked against OurDB per thread hop (when checking is needed).
VERIFY_BATCH = 20_000


class HistoryService(JobsPartService):
    """Owns OurDB for one engine: opens it, reconciles Redis with it, persists reports.

    Only this service writes the history; watchdogs here and elsewhere report through
    the Redis stream that its persister drains.
    """

    name = "jobs"
    max_params_bytes = MAX_PARAMS_BYTES

    def __init__(
        self, config: Config, bus: EventBus, redis: RedisService, scripts: ScriptTools
    ) -> None:
        super().__init__(config, bus, redis, scripts)
        self.manager: JobManager | None = None
        self._db: AsyncOurDB | None = None
        self._index: JobIndex | None = None
        self._persister: Persister | None = None
        self.promoter: Promoter | None = None
        # OurDB's next id as it opened, before any move past the ids Redis holds.
        self._own_next_id = 1

    def address(self) -> str:
        """Where the history lives."""
        return str(self.config.ourdb_dir)

    async def purge(self, flt: JobFilter, **options: Unpack[PurgeOptions]) -> int:
        """Delete ended jobs from the history; see `core.jobs.purge.purge`."""
        if self.manager is None:
            raise ServiceStartError("the jobs service is not running")
        return await purge(self.manager, flt, **options)

    def detail(self) -> str:
        """Damaged records read, when there were any, and scheduled jobs this one queued."""
        parts = []
        manager = self.manager
        if manager is not None and manager.damaged_reads:
            parts.append(f"{manager.damaged_reads} damaged records read")
        if self.promoter is not None and self.promoter.moved:
            parts.append(f"{self.promoter.moved} scheduled jobs queued")
        if manager is not None and manager.purged:
            parts.append(f"{manager.purged} jobs purged")
        if manager is not None and manager.unqueued:
            parts.append(f"{len(manager.unqueued)} stored jobs wait for Redis to take them")
        return ", ".join(parts)

    async def _start(self) -> None:
        config = self.config
        config.ourdb_dir.mkdir(parents=True, exist_ok=True)
        self._index = await asyncio.to_thread(JobIndex, config.data_path / "jobs-index.sqlite")
        # An id the index has seen is never handed out again, even if OurDB lost its
        # record: a reused id would merge two jobs' histories.
        known = await asyncio.to_thread(self._index.max_id)
        try:
            self._db = await AsyncOurDB(config.ourdb_dir, min_next_id=known + 1).open()
        except OurDBError as exc:
            raise ServiceStartError(str(exc)) from None
        redis = self.redis_service.loop_client()
        self.manager = JobManager(
            self._db,
            self._index,
            JobQueue(redis),
            self.bus,
            config.data_path / "results",
            validate=make_validator(self.scripts.registry),
            queue_defaults=config.queues,
        )
        # Whether the last run closed the index after its last write; cleared durably
        # before any write of this run, so a crash from here on is seen at next start.
        clean = await asyncio.to_thread(self._index.was_clean)
        await asyncio.to_thread(self._index.mark_clean, False)
        persister = Persister(redis, self.manager, self.reconcile, self.repair)
        await persister.prepare()
        await self._reserve_ids_redis_holds(redis)
        await persister.drain_pending()
        # OurDB cut a torn tail or repaired something: versions the index shows may be gone.
        await self.reconcile(verify=not clean or bool(self._db.db.warnings))
        self._persister = persister
        self.supervise("persister", persister.run)
        self.supervise("requeue", self.manager.queue_unqueued)
        # Every engine offers to promote due scheduled jobs; the lock picks one at a time.
        self.promoter = Promoter(redis)
        self.supervise("promoter", self.promoter.run)
        sweep = RetentionSweep(lambda: self.manager, config.jobs.retention, self.emit_log)
        if sweep.rules:
            self.supervise("retention", sweep.run)

    async def _reserve_ids_redis_holds(self, redis: aioredis.Redis) -> None:
        """Never hand out an id Redis has queued: OurDB may have lost its newest records.

        After a crash of the machine took OurDB's tail (and its id counter with it) while
        the server, elsewhere or with a newer AOF, kept the jobs, a new job would take the
        id of one Redis holds, and its ENQUEUE would write over that job's hash.
        """
        assert self._db is not None
        highest = int(await redis.get(keys.LAST_ID) or 0)
        self._own_next_id = await self._db.next_id()
        if highest >= self._own_next_id:
            self.emit_log(
                logging.WARNING,
                f"OurDB's next id is at or below job {highest}, which Redis holds; "
                "new jobs take ids above it",
            )
            await self._db.reserve_ids_above(highest)

    async def _stop(self) -> None:
        persister = self._persister
        if persister is not None:
            persister.stopping = True
            tasks = list(self._supervised)
            self._supervised = []
            await cancel_blocked(tasks, persister.redis)
            if self.promoter is not None:
                # Handed over at once rather than when the lease runs out.
                await self.promoter.release()
            # What the watchdogs reported while stopping is persisted before the files close.
            try:
                await persister.drain_new()
            except Exception as exc:  # the next start drains what is left
                self.log.warning("could not persist the last reports: %s", exc)
        if self.manager is not None:
            self.manager.release_waiters()
        if self.manager is not None and self.manager.purge_batches:
            # A purge batch deletes from OurDB and the index together: let it finish.
            await asyncio.gather(*self.manager.purge_batches, return_exceptions=True)
        steps = []
        if self._db is not None:
            steps.append(("close OurDB", self._db.close()))
        if self._index is not None:
            steps.append(("close the index", asyncio.to_thread(self._close_index, self._index)))
        if self.manager is not None:
            steps.append(("close the Redis client", self.manager.queue.redis.aclose()))
        # Each step runs even when an earlier one failed.
        for what, step in steps:
            try:
                await step
            except Exception:
                self.log.exception("could not %s", what)
        self.manager = None
        self._persister = None
        self.promoter = None

    @staticmethod
    def _close_index(index: JobIndex) -> None:
        # Every write of this run is in the index: the next start need not check it.
        index.mark_clean(True)
        index.close()

    async def reconcile(self, *, verify: bool = False) -> None:
        """Make the index and Redis agree with OurDB, the source of truth.

        Driven by OurDB's ids, not by what the index holds:

        * every id in OurDB that the index lacks is indexed (a gap below the highest
          indexed id included): one COUNT per 10,000 ids finds them;
        * with `verify` (the last run did not close cleanly, or OurDB repaired a torn
          tail), every row the index marks ended is checked against the CRC of OurDB's
          latest version of it: a raw read, no parsing (about 3-7 us a job, so a few
          seconds in a thread for 1M jobs); rows that differ are read and re-indexed;
        * every job the index marks new or active is read from OurDB; one whose latest
          version is new or active and that Redis holds nowhere is queued again (an
          active one as new, and that version is stored); a scheduled one goes back into
          the scheduled set at its `run_at`; a job goes back at its priority level;
        * the queues' limits (config and run time) are written to Redis again.

        A clean restart costs the COUNTs plus a read per job not ended. Everything runs in
        batches in threads; the event loop only sees one batch's Redis round trips.
        """
        manager = self.manager
        index = self._index
        assert manager is not None
        assert self._db is not None
        assert index is not None
        # Limits first: the jobs requeued below must not start past them.
        await manager.restore_limits()
        last = await self._db.next_id() - 1
        missing = await asyncio.to_thread(index.missing_ids, last)
        if missing:
            self.emit_log(logging.INFO, f"indexing {len(missing)} jobs the index lacked")
        stale: list[int] = []
        if verify and last:
            self.emit_log(logging.INFO, f"checking the index of {last} jobs against OurDB")
            for first in range(1, last + 1, VERIFY_BATCH):
                end = min(last, first + VERIFY_BATCH - 1)
                stale += await asyncio.to_thread(self._stale_rows, first, end)
            if stale:
                self.emit_log(logging.WARNING, f"re-indexing {len(stale)} jobs OurDB disagrees on")
        # Scheduled jobs too: after Redis lost its data they go back into the scheduled
        # set at their `run_at`, which their latest durable version carries.
        pending = await asyncio.to_thread(index.ids_with_status, ("new", "scheduled", "active"))
        suspects = sorted(set(missing) | set(stale) | set(pending))
        requeue: list[Job] = []
        interrupted: list[Job] = []
        for start in range(0, len(suspects), REINDEX_BATCH):
            chunk = suspects[start : start + REINDEX_BATCH]
            await self._reconcile_chunk(chunk, requeue, interrupted)
        if requeue:
            self.emit_log(logging.WARNING, f"requeueing {len(requeue)} jobs that Redis lacked")
            # A run cut short is part of the job's story: record that it went back.
            await manager.persist(interrupted)
            await manager.queue.enqueue(requeue)
            await manager.restore_links(requeue)

    async def repair(self) -> None:
        """Make a server that may lack the last acknowledged writes agree with OurDB.

        After a failover the promoted replica lacks what the old primary had not yet
        sent it; after a restart from the AOF, up to its last second. `reconcile` queues
        again every job OurDB has pending that Redis lacks; then every job Redis still
        holds whose durable version has ended is dropped there (a leftover whose end the
        server never got: a worker would run it again).
        """
        await self.reconcile()
        dropped = await self._drop_ended_leftovers()
        if dropped:
            self.emit_log(
                logging.WARNING, f"dropped {dropped} jobs from Redis that OurDB has ended"
            )

    async def _drop_ended_leftovers(self) -> int:
        manager = self.manager
        index = self._index
        assert manager is not None
        assert index is not None
        redis = manager.queue.redis
        dropped = 0
        cursor = 0
        while True:
            cursor, places = await redis.hscan(keys.JOB_LOCATION, cursor, count=REINDEX_BATCH)
            # Keys and values are ASCII (ids and "<circle>:<topic>"), whatever the decoding.
            found = {
                int(job_id): str(queue, "ascii") if isinstance(queue, bytes) else queue
                for job_id, queue in cast(dict[bytes | str, bytes | str], places).items()
            }
            ended = await asyncio.to_thread(index.ended_among, sorted(found))
            if ended:
                workers = [
                    w.decode() if isinstance(w, bytes) else w
                    for w in await redis.smembers(keys.WORKERS)
                ]
                async with redis.pipeline(transaction=False) as pipe:
                    for job_id in sorted(ended):
                        circle, _, topic = found[job_id].partition(":")
                        pipe.delete(keys.job_key(circle, topic, job_id))
                        pipe.hdel(keys.JOB_LOCATION, str(job_id))
                        pipe.lrem(keys.queue_key(circle, topic), 0, str(job_id))
                        pipe.zrem(keys.SCHEDULED, str(job_id))
                        for worker in workers:
                            pipe.lrem(keys.processing_key(worker), 0, str(job_id))
                    await pipe.execute()
                dropped += len(ended)
            if not cursor:
                return dropped

    def _stale_rows(self, first: int, last: int) -> list[int]:
        """Ids in `first..last` whose index row may not show OurDB's latest version.

        Rows not ended are left out: reconcile reads those anyway.
        """
        assert self._index is not None
        assert self._db is not None
        rows = self._index.rows(first, last)
        get = self._db.db.get
        stale = []
        for job_id, (status, crc) in rows.items():
            if status not in ("done", "error"):
                continue
            try:
                same = crc is not None and zlib.crc32(get(job_id)) == crc
            except Exception:  # gone or damaged: the read in reconcile tells which
                same = False
            if not same:
                stale.append(job_id)
        return stale

    async def _reconcile_chunk(
        self, chunk: Sequence[int], requeue: list[Job], interrupted: list[Job]
    ) -> None:
        manager = self.manager
        index = self._index
        assert manager is not None
        assert index is not None
        stored = await asyncio.to_thread(manager.read_raw_many, chunk)
        live = await manager.queue.get_live_many(chunk)
        gone = [job_id for job_id in chunk if job_id not in stored]
        # Redis holds a job whose record OurDB lost (a tail the machine's crash cut off):
        # its live state is stored as its version, so it is neither dropped as purged
        # nor run without a history. Only below the id this OurDB had reached: above it
        # an id was never its own (another engine's on the same server, see
        # docs/schedules.md), or the history was lost whole and cannot tell.
        lost = [live[job_id] for job_id in gone if job_id in live and job_id < self._own_next_id]
        if lost:
            self.emit_log(
                logging.WARNING, f"restoring {len(lost)} jobs OurDB lost from their Redis state"
            )
            await manager.persist(lost)
            restored = {job.job_id for job in lost}
            gone = [job_id for job_id in gone if job_id not in restored]
        # OurDB is the truth for the index; a damaged version is not indexed as anything.
        readable = {i: (job, raw) for i, (job, raw) in stored.items() if raw is not None}
        crcs = {i: zlib.crc32(raw) for i, (_, raw) in readable.items() if raw is not None}
        versions = [job for job, _ in readable.values()]

        def update_index() -> None:
            index.upsert(versions, crcs)
            if gone:
                index.delete(gone)

        await asyncio.to_thread(update_index)
        # A server restored from an older copy counts revisions from below what OurDB
        # stored: raised first, so the next change reads as newer than the stored version.
        await manager.queue.raise_revisions(
            [
                job
                for job in versions
                if job.job_id in live and live[job.job_id].revision < job.revision
            ]
        )
        for job in versions:
            if job.status.ended or job.job_id in live:
                continue
            if job.status is JobStatus.ACTIVE:
                job = replace(
                    job,
                    status=JobStatus.NEW,
                    worker="",
                    time_start=0.0,
                    revision=job.revision + 1,
                )
                interrupted.append(job)
            requeue.append(job)
