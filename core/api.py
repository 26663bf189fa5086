"""EngineAPI: the one async API the TUI, the HTTP UI and the CLI use, and its frozen views."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from core.engine import Engine
from core.events import Subscription
from core.heroscript import ActionContext, ActorRegistry, Diagnostic, validate

# `X as X`: types front ends need next to the views, so their screens import only core.api.
from core.heroscript import Span as Span
from core.heroscript import SpanKind as SpanKind
from core.heroscript import highlight_spans as highlight_spans
from core.heroscript.openrpc import discover, handle_jsonrpc
from core.jobs import Job, JobStatus, ParamsType
from core.jobs import JobError as JobError
from core.jobs import JobNotFoundError as JobNotFoundError
from core.jobs.service import JobsService
from core.services import ServiceState as ServiceState
from core.services import ServiceStatus as ServiceStatus


@dataclass(frozen=True)
class JobView:
    """A job as front ends show it; never changes under the viewer."""

    job_id: int
    circle: str
    topic: str
    params: str
    params_type: str
    status: str
    timeout: float
    session_key: str
    time_scheduled: float
    time_start: float
    time_end: float
    error: str
    result: str
    log: bool
    attempts: int
    worker: str
    log_lines: tuple[str, ...]

    @classmethod
    def of(cls, job: Job) -> JobView:
        """The view of a job record."""
        return cls(
            job_id=job.job_id,
            circle=job.circle_id,
            topic=job.topic,
            params=job.params,
            params_type=job.params_type.value,
            status=job.status.value,
            timeout=job.timeout,
            session_key=job.session_key,
            time_scheduled=job.time_scheduled,
            time_start=job.time_start,
            time_end=job.time_end,
            error=job.error,
            result=job.result,
            log=job.log,
            attempts=job.attempts,
            worker=job.worker,
            log_lines=tuple(job.log_lines),
        )

    @property
    def ended(self) -> bool:
        """True once the job is done or failed."""
        return self.status in (JobStatus.DONE.value, JobStatus.ERROR.value)

    @property
    def duration(self) -> float | None:
        """Seconds it ran, once it has ended."""
        if not self.time_start or not self.time_end:
            return None
        return max(0.0, self.time_end - self.time_start)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the session key is left out: it is a credential)."""
        data = dataclasses.asdict(self)
        data.pop("session_key")
        data["log_lines"] = list(self.log_lines)
        return data


@dataclass(frozen=True)
class QueueView:
    """One circle/topic queue: waiting jobs, counts per status, and whether it is paused."""

    circle: str
    topic: str
    waiting: int
    new: int
    active: int
    done: int
    error: int
    paused: bool

    @property
    def name(self) -> str:
        """`circle/topic`, as people write it."""
        return f"{self.circle}/{self.topic}"


@dataclass(frozen=True)
class ActionView:
    """One action of the actor registry, for templates, help and completion."""

    method: str
    doc: str
    params: tuple[tuple[str, str, str], ...]  # (name, type, default or "")
    template: str


@dataclass(frozen=True)
class RedisView:
    """What the server says of itself."""

    version: str
    clients: int
    memory_bytes: int
    ops_per_sec: int
    uptime_seconds: int


class EngineAPI:
    """Everything a front end may ask of a running engine; it never reaches deeper."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- services ------------------------------------------------------------------------

    def services(self) -> list[ServiceStatus]:
        """Every service with its state, address, pid, uptime and last error."""
        return self.engine.statuses()

    async def start_service(self, name: str) -> None:
        """Start one service at run time."""
        await self.engine.start_service(name)

    async def stop_service(self, name: str) -> None:
        """Stop one service at run time."""
        await self.engine.stop_service(name)

    async def redis_info(self) -> RedisView:
        """Version, clients, memory and load of the Redis server."""
        client = self.engine.redis.loop_client()
        try:
            info = await client.info()
        finally:
            await client.aclose()
        return RedisView(
            version=str(info.get("valkey_version") or info.get("redis_version", "")),
            clients=int(info.get("connected_clients", 0)),
            memory_bytes=int(info.get("used_memory", 0)),
            ops_per_sec=int(info.get("instantaneous_ops_per_sec", 0)),
            uptime_seconds=int(info.get("uptime_in_seconds", 0)),
        )

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        """Engine events (service, job, log); close the subscription when done."""
        return self.engine.bus.subscribe(maxsize)

    # -- jobs ----------------------------------------------------------------------------

    async def submit(
        self,
        params: str,
        *,
        topic: str,
        circle: str = "default",
        params_type: str = ParamsType.HEROSCRIPT.value,
        job_timeout: float = 60.0,
        log: bool = False,
        session_key: str | None = None,
    ) -> JobView:
        """Create a job; raises JobError (with line and column for HeroScript) when refused."""
        job = await self.engine.jobs.create_job(
            topic,
            params,
            circle=circle,
            params_type=params_type,
            timeout=job_timeout,
            log=log,
            session_key=session_key,
        )
        return JobView.of(job)

    async def job(self, job_id: int) -> JobView:
        """One job's current state; raises JobNotFoundError."""
        return JobView.of(await self.engine.jobs.get_job(job_id))

    async def history(self, job_id: int) -> list[JobView]:
        """Every version of a job, oldest first."""
        return [JobView.of(v) for v in await self.engine.jobs.job_history(job_id)]

    async def jobs(
        self,
        *,
        status: str | None = None,
        circle: str | None = None,
        topic: str | None = None,
        text: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[JobView]:
        """A page of the history, newest first, filtered in the engine."""
        found = await self.engine.jobs.list_jobs(
            status=status,
            circle=circle,
            topic=topic,
            text=text,
            since=since,
            until=until,
            limit=limit,
            before_id=before_id,
        )
        return [JobView.of(job) for job in found]

    async def cancel(self, job_id: int) -> JobView:
        """End a waiting or running job as cancelled (and stop it if it runs here)."""
        view = JobView.of(await self.engine.jobs.cancel_job(job_id))
        service = self.engine.services.get("jobs")
        if isinstance(service, JobsService) and service.watchdog is not None:
            # Its outcome is fenced off already; this frees the slot and its processes.
            service.watchdog.cancel(job_id)
        return view

    async def requeue(self, job_id: int) -> JobView:
        """Run an ended job again under its id."""
        return JobView.of(await self.engine.jobs.requeue_job(job_id))

    async def queues(self) -> list[QueueView]:
        """Every queue with its counts."""
        manager = self.engine.jobs
        paused = await manager.paused_queues()
        return [
            QueueView(
                circle=s.circle,
                topic=s.topic,
                waiting=s.waiting,
                new=s.counts.get("new", 0),
                active=s.counts.get("active", 0),
                done=s.counts.get("done", 0),
                error=s.counts.get("error", 0),
                paused=f"{s.circle}:{s.topic}" in paused,
            )
            for s in await manager.queue_stats()
        ]

    async def pause_queue(self, circle: str, topic: str) -> None:
        """Stop handing out one queue's jobs."""
        await self.engine.jobs.pause_queue(circle, topic)

    async def resume_queue(self, circle: str, topic: str) -> None:
        """Hand out a paused queue's jobs again."""
        await self.engine.jobs.resume_queue(circle, topic)

    # -- HeroScript and the actor registry ------------------------------------------------

    def validate(self, text: str) -> list[Diagnostic]:
        """Every problem of a HeroScript text, against the engine's actors (pure, fast)."""
        return validate(text, self._registry())

    def actions(self) -> list[ActionView]:
        """Every action the engine can run."""
        registry = self._registry()
        if registry is None:
            return []
        return [
            ActionView(
                method=info.method,
                doc=info.summary,
                params=tuple(
                    (p.name, p.type_name, "" if p.required else repr(p.default))
                    for p in info.params
                ),
                template=registry.template(info.actor, info.name),
            )
            for info in registry.actions()
        ]

    async def rpc(self, request: bytes | str | dict[str, Any] | list[Any]) -> Any:
        """Answer a JSON-RPC 2.0 request over the actor registry (`rpc.discover` included)."""
        registry = self._registry()
        if registry is None:
            raise RuntimeError("the jobs service is not running")
        return await handle_jsonrpc(registry, request, ActionContext())

    def discover(self) -> dict[str, Any]:
        """The OpenRPC document of the registry."""
        registry = self._registry()
        if registry is None:
            raise RuntimeError("the jobs service is not running")
        return discover(registry)

    def _registry(self) -> ActorRegistry | None:
        service = self.engine.services.get("jobs")
        return service.registry if isinstance(service, JobsService) else None

    @staticmethod
    def now() -> float:
        """Wall-clock seconds; front ends take time from here so tests can inject it."""
        return time.time()
