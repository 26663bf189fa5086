"""EngineAPI: everything a front end may ask of a running engine, and nothing deeper."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypedDict, TypeVar, Unpack

from core.api.errors import (
    ERRORS_BY_KIND,
    EngineUnavailable,
    JobNotFound,
    JobRefused,
    ScheduleNotFound,
)
from core.api.views import (
    ActionView,
    HealthView,
    HighlightSpan,
    JobView,
    LimitsView,
    Problem,
    QueueView,
    RedisView,
    ScheduleView,
    ServiceStatus,
    WorkerView,
)
from core.api.wire import jobs_delta
from core.events import JobFilter, JobOptions, JobSpec, ScheduleOptions, ServiceState
from core.events.bus import EventBus, SubscribeOptions, Subscription
from core.events.shapes import MAX_BATCH

if TYPE_CHECKING:
    from core.heroscript.tools import ScriptTools
    from core.jobs.history import HistoryService
    from core.jobs.manager import JobManager
    from core.jobs.scheduler import ScheduleInfo, SchedulerService
    from core.redis_server.service import RedisService
    from core.rhai.tools import RhaiTools
    from core.watchdog.service import SlotsService

DEFAULT_LIMIT = 50
# What a batch submit answers (views, or their short form).
_R = TypeVar("_R")


class PageOptions(TypedDict, total=False):
    """`jobs`' page keywords, for the listings that narrow its filter and pass them on."""

    limit: int
    before_id: int | None


# Texts up to this size are parsed on the loop (well under a millisecond).
INLINE_PARSE_CHARS = 4_096


class ServiceHost(Protocol):
    """What the API needs of the engine: its services, and the parts it reads through them.

    A part the engine has not built (its service disabled) is None.
    """

    bus: EventBus
    scripts: ScriptTools
    rhai: RhaiTools
    history: HistoryService | None
    watchdog: SlotsService | None
    redis_service: RedisService | None
    scheduler: SchedulerService | None

    def statuses(self) -> list[ServiceStatus]:
        """Every service, in start order."""
        ...

    async def start_service(self, name: str) -> None:
        """Start one service at run time."""
        ...

    async def stop_service(self, name: str) -> None:
        """Stop one service at run time."""
        ...


def _raise_typed(exc: Exception, index: int | None = None) -> NoReturn:
    """Re-raise an engine part's refusal as the API's typed error of the same kind.

    With `index`, the refusal is of that item of a batch, and the message says so.
    """
    typed = _typed(exc, index)
    if typed is exc:
        raise exc
    raise typed from None


def _typed(exc: BaseException, index: int | None = None) -> BaseException:
    """The API's typed error for an engine part's refusal; any other error as it is."""
    kind = getattr(exc, "kind", None)
    typed = ERRORS_BY_KIND.get(kind) if isinstance(kind, str) else None
    if typed is None or not issubclass(typed, JobRefused):
        return exc
    problems = tuple(_problem(d) for d in getattr(exc, "problems", ()))
    line, col = getattr(exc, "line", 0), getattr(exc, "col", 0)
    message = str(exc) if index is None else f"item {index}: {exc}"
    return typed(message, line=line, col=col, problems=problems, index=index)


def _submitted(made: Sequence[tuple[Any, bool]]) -> list[JobView]:
    """The views of a submit's jobs; an existing one (a held unique key) is a duplicate."""
    return [JobView.of(job, duplicate=not created) for job, created in made]


def _problem(d: Any) -> Problem:
    return Problem(d.line, d.col, d.message, str(d.severity), d.end_col)


@contextlib.contextmanager
def _typed_errors() -> Iterator[None]:
    try:
        yield
    except ValueError as exc:  # the job manager's refusals are ValueErrors with a kind
        _raise_typed(exc)


class EngineAPI:
    """The one door into the engine: the TUI, HTTP UI, request server and inbox use it.

    It is handed the engine and reads its parts from it; they may stop and start under
    it, and a call that needs a stopped part raises EngineUnavailable.
    """

    def __init__(self, host: ServiceHost) -> None:
        self._host = host

    def _manager(self) -> JobManager | None:
        history = self._host.history
        return history.manager if history is not None else None

    def _jobs(self) -> JobManager:
        manager = self._manager()
        if manager is None:
            raise EngineUnavailable("the jobs service is not running")
        return manager

    # -- services and events -------------------------------------------------------------

    def services(self) -> list[ServiceStatus]:
        """Every service with its state, address, pid, uptime and last error."""
        return self._host.statuses()

    async def start_service(self, name: str) -> None:
        """Start one service at run time."""
        await self._host.start_service(name)

    async def stop_service(self, name: str) -> None:
        """Stop one service at run time."""
        await self._host.stop_service(name)

    async def redis_info(self) -> RedisView:
        """Version, clients, memory, load and replicas of the server; the primary's address."""
        redis = self._host.redis_service
        if redis is None:
            raise EngineUnavailable("the redis service is disabled")
        primary = await redis.primary_address()
        client = redis.loop_client()
        try:
            info = await client.info()
        finally:
            await client.aclose()
        return RedisView(
            primary=f"{primary[0]}:{primary[1]}" if primary is not None else "",
            replicas=int(info.get("connected_slaves", 0)),
            failovers=redis.failovers,
            version=str(info.get("valkey_version") or info.get("redis_version", "")),
            clients=int(info.get("connected_clients", 0)),
            memory_bytes=int(info.get("used_memory", 0)),
            ops_per_sec=int(info.get("instantaneous_ops_per_sec", 0)),
            uptime_seconds=int(info.get("uptime_in_seconds", 0)),
        )

    async def workers(self) -> list[WorkerView]:
        """Every watchdog on the shared server, alive or lost, by id (see WorkerView)."""
        now, records = await self._jobs().queue.workers()
        return [
            WorkerView(
                worker=r.worker,
                state="alive" if r.alive else "lost",
                host=r.host,
                pid=r.pid,
                slots=r.slots,
                busy=r.busy,
                running=r.held,
                started=r.started,
                last_heartbeat=r.heartbeat,
                heartbeat_age=max(0.0, now - r.heartbeat) if r.heartbeat else 0.0,
                version=r.version,
            )
            for r in records
        ]

    def health(self) -> HealthView:
        """Job slots (busy, held by abandoned threads), damaged reads, retries, dead letters."""
        dog = self._host.watchdog
        manager = self._manager()
        return HealthView(
            slots=dog.config.jobs.worker_count if dog is not None else 0,
            busy_slots=dog.busy_slots if dog is not None else 0,
            abandoned_slots=dog.abandoned_slots if dog is not None else 0,
            damaged_reads=manager.damaged_reads if manager is not None else 0,
            job_retries=manager.retries_total if manager is not None else 0,
            dead_letters=manager.dead_letters_total if manager is not None else 0,
            purged=manager.purged if manager is not None else 0,
            unqueued=len(manager.unqueued) if manager is not None else 0,
        )

    def subscribe(self, maxsize: int = 10_000, **options: Unpack[SubscribeOptions]) -> Subscription:
        """Engine events (service, job, log); close the subscription when done.

        With `coalesce`, a job's state changes that the reader has not taken yet are
        replaced by the newest one (for views that show states, not count steps). `loop`:
        the reader's, when it is not the engine's (see `core.api.other_loop`).
        """
        return self._host.bus.subscribe(maxsize, **options)

    # -- jobs ----------------------------------------------------------------------------

    @property
    def max_params_bytes(self) -> int:
        """The largest params text (UTF-8 bytes) a job may have; check before parsing."""
        history = self._host.history
        if history is None:
            raise EngineUnavailable("the jobs service is disabled")
        return history.max_params_bytes

    async def submit(
        self, params: str, *, session_key: str | None = None, **options: Unpack[JobOptions]
    ) -> JobView:
        """Create a job; raises JobRefused (with line and column for HeroScript).

        The options are JobSpec's fields. With `delay` (seconds) or `run_at` (epoch
        seconds) it waits as `scheduled` until then; the retry fields and `priority` (0-9,
        higher first) left None take the queue's defaults from the config. With
        `unique_key`, an existing job holding the key comes back instead, its view's
        `duplicate` True. With `depends_on`, it waits as `scheduled` until those jobs are
        done (see docs/client.md).
        """
        return await self.submit_spec(JobSpec(params, **options), session_key=session_key)

    async def submit_spec(self, spec: JobSpec, *, session_key: str | None = None) -> JobView:
        """Create the job a JobSpec describes (see `submit`).

        Concurrent calls share one durable write (see `JobManager.submit_one`); each
        waits for its own job to be stored, and a refusal is only its own.
        """
        with _typed_errors():
            made = await self._jobs().submit_one(spec, session_key=session_key)
        return _submitted([made])[0]

    async def submit_each(
        self, specs: Sequence[JobSpec], *, session_key: str | None = None
    ) -> list[JobView | BaseException]:
        """Each spec as its own `submit_spec`, all at once: what a batch of callers sent.

        Not all or none: each item gets its view or its own error (a JobRefused, or
        whatever else failed it), in its place. The items share durable writes as
        concurrent `submit_spec` calls do; a request carries at most MAX_BATCH.
        """
        if len(specs) > MAX_BATCH:
            raise JobRefused(f"a batch holds at most {MAX_BATCH} jobs, got {len(specs)}")
        made = await self._jobs().submit_each(specs, session_key=session_key)
        return [
            _typed(outcome) if isinstance(outcome, BaseException) else _submitted([outcome])[0]
            for outcome in made
        ]

    async def submit_many(
        self, specs: Sequence[JobSpec], *, session_key: str | None = None
    ) -> list[JobView]:
        """Create up to MAX_BATCH jobs with one durable OurDB write and one Redis transaction.

        All or none: when any item is refused, no job of the batch is created, and
        JobRefused names the first bad item by its place in `specs` (from 0), in its
        message ("item 3: line 1, col 3: ...") and in `index`. The jobs come back in the
        order of `specs`, with ids in that order.
        """
        return await self._submit_batch(specs, session_key, _submitted)

    async def submit_many_delta(
        self, specs: Sequence[JobSpec], *, session_key: str | None = None
    ) -> dict[str, Any]:
        """`submit_many`, answered in the short form `views_delta` makes of its views.

        Made from the jobs without a view of each: the request channel's batch reply.
        """
        return await self._submit_batch(specs, session_key, jobs_delta)

    async def _submit_batch(
        self,
        specs: Sequence[JobSpec],
        session_key: str | None,
        reply: Callable[[Sequence[tuple[Any, bool]]], _R],
    ) -> _R:
        """A batch's jobs made, and `reply` of them: made while Redis queues them."""
        if len(specs) > MAX_BATCH:
            raise JobRefused(f"a batch holds at most {MAX_BATCH} jobs, got {len(specs)}")
        if not specs:
            return reply([])
        replies: list[_R] = []
        try:
            made = await self._jobs().submit_jobs(
                specs, session_key=session_key, meanwhile=lambda jobs: replies.append(reply(jobs))
            )
        except ValueError as exc:
            _raise_typed(exc, getattr(exc, "index", None))
        return replies[0] if replies else reply(made)

    async def submit_graph(self, text: str, *, session_key: str | None = None) -> list[JobView]:
        """Create the jobs of a HeroScript graph (docs/heroscript.md) as one batch.

        The jobs come back in the order the text defines them; each waits for the jobs
        its `after:` names. A refused graph (syntax, unknown name, cycle) creates nothing.
        """
        jobs = self._jobs()
        with _typed_errors():
            if len(text) > INLINE_PARSE_CHARS:
                specs = await asyncio.to_thread(jobs.graph_specs, text)
            else:
                specs = jobs.graph_specs(text)
        return await self.submit_many(specs, session_key=session_key)

    async def wait(self, job_id: int) -> JobView:
        """Wait until the job has ended (done or error) and return its final state.

        Answered by the write that makes the end durable, with the version it wrote (no
        read after it, no polling); a job ended already comes back at once. Raises
        JobNotFound, or EngineUnavailable when the jobs service stops meanwhile. Bound
        the wait with `asyncio.timeout`.
        """
        try:
            with _typed_errors():
                return JobView.of(await self._jobs().wait_ended(job_id))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller's cancel
            raise EngineUnavailable("the jobs service stopped while waiting") from None

    async def job(self, job_id: int) -> JobView:
        """One job's current state; raises JobNotFound."""
        return (await self.jobs_by_id([job_id]))[0]

    async def jobs_by_id(self, job_ids: Sequence[int]) -> list[JobView]:
        """The current state of each of these jobs, in the order asked.

        Two Redis round trips for the live ones and one thread hop for the ended ones,
        whatever their number; raises JobNotFound naming the first unknown id.
        """
        found = await self._jobs().shown_jobs(job_ids)
        views = []
        for job_id in job_ids:
            job = found.get(job_id)
            if job is None:
                raise JobNotFound(f"no job with id {job_id}")
            views.append(JobView.of(job))
        return views

    async def relatives(self, job_id: int) -> tuple[list[JobView], list[JobView]]:
        """A job's parents (its `depends_on`) and its dependants, with their current states.

        Raises JobNotFound for an unknown job; a parent or dependant whose record is gone
        is left out.
        """
        manager = self._jobs()
        with _typed_errors():
            job = await manager.get_job(job_id)
        children = await asyncio.to_thread(manager.index.children, job_id)
        found = await manager.shown_jobs([*job.depends_on, *children])

        def views(ids: Sequence[int]) -> list[JobView]:
            return [JobView.of(found[i]) for i in ids if i in found]

        return views(job.depends_on), views(children)

    async def history(self, job_id: int) -> list[JobView]:
        """Every version of a job, oldest first; raises JobNotFound."""
        with _typed_errors():
            return [JobView.of(v) for v in await self._jobs().job_history(job_id)]

    async def jobs(
        self,
        flt: JobFilter | None = None,
        *,
        limit: int = DEFAULT_LIMIT,
        before_id: int | None = None,
    ) -> list[JobView]:
        """A page of the history, newest first, narrowed in the engine's index."""
        found = await self._jobs().list_jobs(flt or JobFilter(), limit=limit, before_id=before_id)
        return [JobView.of(job) for job in found]

    async def cancel(self, job_id: int) -> JobView:
        """End a waiting or running job as cancelled (and stop it if it runs here)."""
        with _typed_errors():
            view = JobView.of(await self._jobs().cancel_job(job_id))
        dog = self._host.watchdog
        if dog is not None:
            # Its outcome is fenced off already; this frees the slot and its processes.
            dog.cancel(job_id)
        return view

    async def requeue(self, job_id: int) -> JobView:
        """Run an ended job again under its id; raises JobNotEnded while it runs."""
        with _typed_errors():
            return JobView.of(await self._jobs().requeue_job(job_id))

    async def dead(
        self, flt: JobFilter | None = None, **page: Unpack[PageOptions]
    ) -> list[JobView]:
        """Dead letters, newest first: jobs that ended in error after their last attempt."""
        return await self.jobs(dataclasses.replace(flt or JobFilter(), dead=True), **page)

    async def requeue_many(self, flt: JobFilter) -> list[JobView]:
        """Run again every ended job the filter finds; jobs not ended are skipped.

        `JobFilter(dead=True)` requeues every dead letter. Each keeps its id and history.
        """
        with _typed_errors():
            return [JobView.of(job) for job in await self._jobs().requeue_many(flt)]

    async def purge(
        self,
        flt: JobFilter | None = None,
        *,
        before: float | None = None,
        keep: int = 0,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete ended jobs from the history, oldest first; returns how many went.

        Only done and error jobs are taken (a filter on another status is refused), and
        only those that ended before `before` (epoch seconds) when it is given; `keep`
        spares the newest `keep` matches, `limit` stops after that many. A purged job
        leaves the listing, the index and OurDB (every version): reading it raises
        JobNotFound. `JobFilter(dead=True)` purges dead letters. `progress` gets the
        running count after each batch of 1,000.
        """
        flt = flt or JobFilter()
        if flt.status not in (None, "done", "error"):
            raise JobRefused(f"status {flt.status!r} is not ended; purge takes done or error jobs")
        if keep < 0 or (limit is not None and limit < 1):
            raise JobRefused("keep must not be negative, and limit must be at least 1")
        history = self._host.history
        if history is None or history.manager is None:
            raise EngineUnavailable("the jobs service is not running")
        return await history.purge(
            flt, ended_before=before, keep=keep, limit=limit, progress=progress
        )

    async def queues(self) -> list[QueueView]:
        """Every queue with its counts."""
        manager = self._jobs()
        paused = await manager.paused_queues()
        limits = {q.name: q for q in await manager.queue_limits()}
        views = []
        for s in await manager.queue_stats():
            lim = limits.get(f"{s.circle}/{s.topic}") or LimitsView(s.circle, s.topic)
            views.append(
                QueueView(
                    circle=s.circle,
                    topic=s.topic,
                    waiting=s.waiting,
                    new=s.counts.get("new", 0),
                    active=s.counts.get("active", 0),
                    done=s.counts.get("done", 0),
                    error=s.counts.get("error", 0),
                    paused=f"{s.circle}:{s.topic}" in paused,
                    max_active=lim.max_active,
                    rate=lim.rate,
                    held=lim.held,
                )
            )
        return views

    async def pause_queue(self, circle: str, topic: str) -> None:
        """Stop handing out one queue's jobs."""
        await self._jobs().pause_queue(circle, topic)

    async def resume_queue(self, circle: str, topic: str) -> None:
        """Hand out a paused queue's jobs again."""
        await self._jobs().resume_queue(circle, topic)

    async def queue_limits(self) -> list[LimitsView]:
        """Every queue that has limits, with its active jobs and what holds it."""
        return await self._jobs().queue_limits()

    async def set_queue_limits(
        self, circle: str, topic: str, *, max_active: int = 0, rate: str = ""
    ) -> LimitsView:
        """Set one queue's limits for every worker on every machine, at once.

        `max_active`: at most that many of its jobs active at once (0: no limit);
        `rate`: at most N starts per period, "20/s", "100/m", "5/10s" ("" : no limit).
        Both replace what was set before; raises JobRefused naming a bad value.
        """
        with _typed_errors():
            return await self._jobs().set_limits(circle, topic, max_active, rate)

    # -- schedules (periodic jobs) ---------------------------------------------------------

    def _schedules(self) -> SchedulerService:
        scheduler = self._host.scheduler
        if scheduler is None or scheduler.state is not ServiceState.RUNNING:
            raise EngineUnavailable("the scheduler service is not running")
        return scheduler

    def schedules(self) -> list[ScheduleView]:
        """Every schedule (the config's and the run-time ones), by name."""
        return [_schedule_view(info) for info in self._schedules().infos()]

    async def add_schedule(
        self, name: str, params: str, **options: Unpack[ScheduleOptions]
    ) -> ScheduleView:
        """Add (or replace) a run-time schedule; raises JobRefused for a bad definition.

        It is kept in this engine's data dir and fires from the next fire after now.
        """
        fields = {"name": name, "params": params, **options}
        try:
            info = await self._schedules().add_fields(fields)
        except ValueError as exc:
            if getattr(exc, "kind", None):  # the job manager's refusal of the params
                _raise_typed(exc)
            raise JobRefused(str(exc)) from None
        return _schedule_view(info)

    async def pause_schedule(self, name: str) -> ScheduleView:
        """Stop firing a schedule; raises ScheduleNotFound."""
        return await self._set_paused(name, True)

    async def resume_schedule(self, name: str) -> ScheduleView:
        """Fire a paused schedule again, from its next fire after now (no catch-up)."""
        return await self._set_paused(name, False)

    async def _set_paused(self, name: str, paused: bool) -> ScheduleView:
        try:
            return _schedule_view(await self._schedules().set_paused(name, paused))
        except KeyError:
            raise ScheduleNotFound(f"no schedule named {name!r}") from None

    async def remove_schedule(self, name: str) -> None:
        """Remove a run-time schedule; one from the config is refused (JobRefused)."""
        try:
            await self._schedules().remove(name)
        except KeyError:
            raise ScheduleNotFound(f"no schedule named {name!r}") from None
        except ValueError as exc:
            raise JobRefused(str(exc)) from None

    # -- HeroScript and the actor registry ------------------------------------------------

    async def validate(self, text: str, params_type: str = "heroscript") -> list[Problem]:
        """The problems of a HeroScript or RhaiScript text (nothing runs).

        HeroScript is checked against the engine's actors, every problem; Rhai stops at its
        first parse error. Other params types have no editor checks.

        Parsing takes about a microsecond per byte: a long text is parsed in a thread, so
        the event loop (which the TUI shares) never waits for it.
        """
        check = self._checker(params_type)
        if check is None:
            return []
        if len(text) > INLINE_PARSE_CHARS:
            found = await asyncio.to_thread(check, text)
        else:
            found = check(text)
        return [_problem(d) for d in found]

    def highlight(self, text: str, params_type: str = "heroscript") -> list[HighlightSpan]:
        """Spans to colour a HeroScript or RhaiScript text with; never raises."""
        if params_type == "rhaiscript":
            spans = self._host.rhai.highlight(text)
        elif params_type == "heroscript":
            spans = self._host.scripts.highlight(text)
        else:
            spans = []
        return [HighlightSpan(s.line, s.start, s.end, s.kind.value) for s in spans]

    def _checker(self, params_type: str) -> Callable[[str], Sequence[Any]] | None:
        if params_type == "heroscript":
            return self._host.scripts.validate
        if params_type == "rhaiscript":
            return self._host.rhai.validate
        return None

    def actions(self) -> list[ActionView]:
        """Every action the engine can run (none until the actors are loaded)."""
        return [
            ActionView(
                method=info.method,
                doc=info.summary,
                params=tuple(
                    (p.name, p.type_name, "" if p.required else repr(p.default))
                    for p in info.params
                ),
                template=template,
            )
            for info, template in self._host.scripts.actions()
        ]

    async def rpc(self, request: bytes | str | dict[str, Any] | list[Any]) -> Any:
        """Answer a JSON-RPC 2.0 request over the actor registry (`rpc.discover` included)."""
        try:
            return await self._host.scripts.rpc(request)
        except LookupError as exc:
            raise EngineUnavailable(str(exc)) from None

    def discover(self) -> dict[str, Any]:
        """The OpenRPC document of the registry."""
        try:
            return self._host.scripts.discover()
        except LookupError as exc:
            raise EngineUnavailable(str(exc)) from None


def _schedule_view(info: ScheduleInfo) -> ScheduleView:
    return ScheduleView(
        **dataclasses.asdict(info.schedule),
        paused=info.paused,
        last_fire=info.last_fire,
        next_fire=info.next_fire,
        fires=info.fires,
        last_job=info.last_job,
    )
