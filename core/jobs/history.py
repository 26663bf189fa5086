"""HistoryService: the job history (OurDB, its index, the manager) and its persister."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from core.config import Config
from core.events import EventBus
from core.heroscript.tools import ScriptTools
from core.jobs.index import JobIndex
from core.jobs.manager import MAX_PARAMS_BYTES, JobManager
from core.jobs.model import Job, JobStatus
from core.jobs.persister import Persister
from core.jobs.queue import JobQueue
from core.jobs.validation import make_validator
from core.ourdb import AsyncOurDB, OurDBError
from core.redis_server import RedisService
from core.redis_server.blocking import cancel_blocked
from core.services import Service, ServiceStartError

REINDEX_BATCH = 2_000


class HistoryService(Service):
    """Owns OurDB for one engine: opens it, reconciles Redis with it, persists reports.

    Only this service writes the history; watchdogs here and elsewhere report through
    the Redis stream that its persister drains.
    """

    name = "jobs"
    max_params_bytes = MAX_PARAMS_BYTES

    def __init__(
        self, config: Config, bus: EventBus, redis: RedisService, scripts: ScriptTools
    ) -> None:
        super().__init__(bus)
        self.config = config
        self.redis_service = redis
        self.scripts = scripts
        self.manager: JobManager | None = None
        self._db: AsyncOurDB | None = None
        self._index: JobIndex | None = None
        self._persister: Persister | None = None

    def address(self) -> str:
        """Where the history lives."""
        return str(self.config.ourdb_dir)

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
        )
        persister = Persister(redis, self.manager, self.reconcile)
        await persister.prepare()
        await persister.drain_pending()
        await self.reconcile()
        self._persister = persister
        self.supervise("persister", persister.run)

    async def _stop(self) -> None:
        persister = self._persister
        if persister is not None:
            persister.stopping = True
            tasks = list(self._supervised)
            self._supervised = []
            await cancel_blocked(tasks, persister.redis)
            # What the watchdogs reported while stopping is persisted before the files close.
            try:
                await persister.drain_new()
            except Exception as exc:  # the next start drains what is left
                self.log.warning("could not persist the last reports: %s", exc)
        steps = []
        if self._db is not None:
            steps.append(("close OurDB", self._db.close()))
        if self._index is not None:
            steps.append(("close the index", asyncio.to_thread(self._index.close)))
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

    async def reconcile(self) -> None:
        """Make the index and Redis agree with OurDB, the source of truth.

        Indexes versions the index missed, then puts every job that OurDB says is new or
        active, and that Redis does not hold, back into its queue (active ones as new).
        """
        manager = self.manager
        index = self._index
        assert manager is not None
        assert self._db is not None
        assert index is not None
        last = await self._db.next_id() - 1
        first = await asyncio.to_thread(index.max_id) + 1
        if last >= first:
            self.emit_log(logging.INFO, f"indexing jobs {first}..{last} from OurDB")
        for start in range(first, last + 1, REINDEX_BATCH):
            batch = await self._load_range(start, min(last, start + REINDEX_BATCH - 1))
            await asyncio.to_thread(index.upsert, batch)
        pending = await asyncio.to_thread(index.ids_with_status, ("new", "active"))
        requeue: list[Job] = []
        interrupted: list[Job] = []
        for start in range(0, len(pending), REINDEX_BATCH):
            chunk = pending[start : start + REINDEX_BATCH]
            stored = await asyncio.to_thread(manager.read_many, chunk)
            live = await manager.queue.get_live_many(chunk)
            ended = [job for job in stored.values() if job.status.ended]
            if ended:
                await asyncio.to_thread(index.upsert, ended)
            for job_id in chunk:
                job = stored.get(job_id)
                if job is None or job.status.ended or job_id in live:
                    continue
                if job.status is JobStatus.ACTIVE:
                    job = replace(job, status=JobStatus.NEW, worker="", time_start=0.0)
                    interrupted.append(job)
                requeue.append(job)
        if requeue:
            self.emit_log(logging.WARNING, f"requeueing {len(requeue)} jobs that Redis lacked")
            # A run cut short is part of the job's story: record that it went back.
            await manager.persist(interrupted)
            await manager.queue.enqueue(requeue)

    async def _load_range(self, first: int, last: int) -> list[Job]:
        assert self.manager is not None
        found = await asyncio.to_thread(self.manager.read_many, range(first, last + 1))
        return list(found.values())
