"""JobsService: opens the history, reconciles it with Redis, persists, and runs the watchdog."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from core.config import Config
from core.events import EventBus
from core.heroscript import ActorRegistry, ActorsSettings
from core.jobs.index import JobIndex
from core.jobs.manager import JobManager
from core.jobs.model import Job, JobStatus
from core.jobs.persister import Persister
from core.jobs.queue import JobQueue
from core.jobs.requests import RequestServer
from core.jobs.validation import make_validator
from core.ourdb import AsyncOurDB
from core.redis_server import RedisService
from core.redis_server.blocking import cancel_blocked
from core.services import Service
from core.watchdog import Processors, WatchDog, WatchDogSettings
from core.watchdog.processors import ProcessorSettings

if TYPE_CHECKING:
    from core.webdav.inbox import Inbox

REINDEX_BATCH = 2_000


def build_registry(config: Config) -> ActorRegistry:
    """The actor registry as the config describes it."""
    settings = ActorsSettings(
        modules=tuple(config.actors.modules),
        enable_shell=config.actors.enable_shell,
        files_root=config.webdav_root,
    )
    return ActorRegistry.from_settings(settings)


def build_processors(config: Config, registry: ActorRegistry) -> Processors:
    """Processors configured from `jobs.*` and `ai.*`."""
    return Processors(
        registry,
        ProcessorSettings(
            rhai_command=config.jobs.rhai_command,
            ai_base_url=config.ai.base_url,
            ai_model=config.ai.model,
            ai_api_key=config.ai.api_key,
        ),
    )


def watchdog_settings(config: Config) -> WatchDogSettings:
    """Pool settings from `jobs.*`."""
    return WatchDogSettings(
        worker_count=config.jobs.worker_count,
        lease_seconds=config.jobs.lease_seconds,
        max_attempts=config.jobs.max_attempts,
    )


class JobsService(Service):
    """The job system of one engine: the manager, the persister and a local watchdog."""

    name = "jobs"

    def __init__(self, config: Config, bus: EventBus, redis: RedisService) -> None:
        super().__init__(bus)
        self.config = config
        self.redis_service = redis
        self.registry: ActorRegistry | None = None
        self.manager: JobManager | None = None
        self.watchdog: WatchDog | None = None
        self._db: AsyncOurDB | None = None
        self._index: JobIndex | None = None
        self._persister_task: asyncio.Task[None] | None = None
        self._persister: Persister | None = None
        self.inbox: Inbox | None = None
        self._requests: RequestServer | None = None
        self._request_task: asyncio.Task[None] | None = None

    def address(self) -> str:
        """Where the history lives."""
        return str(self.config.ourdb_dir)

    def detail(self) -> str:
        """Worker slots and jobs completed here."""
        if self.watchdog is None:
            return ""
        return f"{self.config.jobs.worker_count} workers, {self.watchdog.completed} completed"

    async def _start(self) -> None:
        config = self.config
        config.ourdb_dir.mkdir(parents=True, exist_ok=True)
        self._db = await AsyncOurDB(config.ourdb_dir).open()
        self._index = await asyncio.to_thread(JobIndex, config.data_path / "jobs-index.sqlite")
        redis = self.redis_service.loop_client()
        queue = JobQueue(redis)
        self.registry = await asyncio.to_thread(build_registry, config)
        self.manager = JobManager(
            self._db,
            self._index,
            queue,
            self.bus,
            config.data_path / "results",
            validate=make_validator(self.registry),
        )
        persister = Persister(redis, self.manager, self.reconcile)
        await persister.prepare()
        await persister.drain_pending()
        await self.reconcile()
        self._persister_task = asyncio.create_task(persister.run(), name="jobs-persister")
        if config.jobs.worker_count:
            self.watchdog = WatchDog(
                redis,
                build_processors(config, self.registry),
                watchdog_settings(config),
                bus=self.bus,
            )
            await self.watchdog.start()
        self._requests = RequestServer(redis, self.manager)
        self._request_task = asyncio.create_task(self._requests.run(), name="jobs-requests")
        if config.enable_webdav:
            # The inbox turns .hero files dropped into the WebDAV folder into jobs.
            from core.webdav.inbox import Inbox

            self.inbox = Inbox(config.webdav_root, self.bus, submitter=self.manager)
            await self.inbox.start()
        self._persister = persister

    async def _stop(self) -> None:
        if self.inbox is not None:
            await self.inbox.stop()
            self.inbox = None
        if self._request_task is not None and self._requests is not None:
            self._requests.stopping = True
            await cancel_blocked([self._request_task], self._requests.redis)
            self._request_task = None
        if self.watchdog is not None:
            await self.watchdog.stop()
        if self._persister_task is not None:
            assert self._persister is not None
            self._persister.stopping = True
            await cancel_blocked([self._persister_task], self._persister.redis)
        # What the watchdog reported while stopping is persisted before the files close.
        if self._persister is not None:
            try:
                await self._persister.drain_new()
            except Exception as exc:  # the next start drains what is left
                self.log.warning("could not persist the last reports: %s", exc)
        if self._db is not None:
            await self._db.close()
        if self._index is not None:
            await asyncio.to_thread(self._index.close)
        if self.manager is not None:
            await self.manager.queue.redis.aclose()

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
