"""The ASGI app: JSON API, JSON-RPC, server-sent events, metrics and the page, over EngineAPI."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

import core
from core.api import (
    EngineAPI,
    EngineUnavailable,
    JobFilter,
    JobRefused,
    JobView,
    LimitsView,
    ScheduleNotFound,
    ScheduleOptions,
    ScheduleView,
    WorkerView,
    job_wire,
)
from core.events import LogEmitted
from core.events.bus import EventBus
from core.http_ui import models as m
from core.http_ui.errors import (
    COMMON_RESPONSES,
    CONFLICT,
    NOT_FOUND,
    changing,
    install_error_handlers,
    problem,
    refusal,
    refused_submission,
)
from core.http_ui.guard import GuardRules, declare_bearer
from core.http_ui.metrics import JobStats, render_prometheus
from core.http_ui.sse import DEFAULT_TYPES, EVENT_TYPES, EventStreams

STATIC = Path(__file__).parent / "static"
# The page loads only its own files; even an escaping bug could not run a foreign script.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_TYPES = "|".join(EVENT_TYPES)
TYPES_PATTERN = f"^({_TYPES})(,({_TYPES}))*$"
JobId = Annotated[int, PathParam(ge=1, le=m.MAX_JOB_ID)]
Name = Annotated[str, PathParam(pattern=m.NAME_PATTERN)]
log = logging.getLogger("core.ui.rpc")
# Seconds a client refused for too many event streams is told to wait.
STREAMS_RETRY_AFTER = 5


@dataclass
class UIContext:
    """What the routes share: the engine's API, the event streams, the stats, the rules."""

    api: EngineAPI
    streams: EventStreams
    stats: JobStats
    rules: GuardRules
    rpc_timeout: float = 60.0
    bus: EventBus | None = None


class _AdmittedStream(StreamingResponse):
    """A stream that gives its slot back however it ends, even if it never got going."""

    def __init__(self, release: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def build_app(ctx: UIContext) -> FastAPI:
    """The app for one running service; `serve_another` points it at the next one."""
    app = FastAPI(
        title="HeroAgent",
        version=core.__version__,
        description="Jobs, queues, services and events of one HeroAgent engine.",
        responses=COMMON_RESPONSES,
        docs_url=None,
        redoc_url=None,
    )
    api = ctx.api
    install_error_handlers(app)

    def serve(new: UIContext) -> None:
        # The routes read `ctx` and `api` when they are called, so the app built once
        # (about 0.7 s of CPU: FastAPI analyses every route's types) serves another start.
        nonlocal ctx, api
        ctx, api = new, new.api

    app.state.serve = serve

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> m.Health:
        """The service answers."""
        return m.Health()

    @app.get("/api/jobs", response_model=m.JobPage, tags=["jobs"])
    async def list_jobs(
        status: m.StatusName | None = None,
        circle: Annotated[str | None, Query(pattern=m.NAME_PATTERN)] = None,
        topic: Annotated[str | None, Query(pattern=m.NAME_PATTERN)] = None,
        text: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
        until: Annotated[float | None, Query(allow_inf_nan=False)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before_id: Annotated[int | None, Query(ge=1, le=m.MAX_JOB_ID)] = None,
    ) -> Response:
        """A page of the job history, newest first, filtered."""
        flt = JobFilter(
            status=status, circle=circle, topic=topic, text=text, since=since, until=until
        )
        views = await api.jobs(flt, limit=limit, before_id=before_id)
        # Plain dicts, not models: this is the hot path, and the views are already well formed.
        jobs = [job_wire(view) for view in views]
        more = views[-1].job_id if len(views) == limit else None
        return JSONResponse({"jobs": jobs, "next_before_id": more})

    @app.post(
        "/api/jobs/batch",
        status_code=201,
        response_model=list[JobView],
        tags=["jobs"],
        openapi_extra={"requestBody": m.BATCH_REQUEST_BODY},
    )
    async def submit_batch(request: Request) -> Any:
        """Create up to 1,000 jobs at once: a JSON array of submit bodies, or NDJSON.

        All or none: a bad item is a 422 naming its index (from 0), and no job is
        created. The jobs come back in the order sent, in one durable write.
        """
        ndjson = request.headers.get("content-type", "").split(";")[0].strip() == m.NDJSON
        try:
            items = m.batch_items(await request.body(), ndjson=ndjson)
        except m.BatchError as exc:
            return refusal(exc.status, str(exc), index=exc.index)
        specs = [b.spec() for b in items]
        try:
            views = await api.submit_many(specs)
        except JobRefused as exc:
            return JSONResponse(refused_submission(exc).model_dump(), status_code=422)
        return JSONResponse([job_wire(view) for view in views], status_code=201)

    @app.post("/api/jobs/graph", status_code=201, response_model=list[JobView], tags=["jobs"])
    async def submit_graph(body: m.GraphRequest) -> Any:
        """Create the jobs of a HeroScript graph and their edges, as one batch.

        All or none: a syntax error, an unknown name or a cycle is a 422 naming it.
        """
        try:
            views = await api.submit_graph(body.text)
        except JobRefused as exc:
            return JSONResponse(refused_submission(exc).model_dump(), status_code=422)
        return JSONResponse([job_wire(view) for view in views], status_code=201)

    @app.post("/api/jobs/purge", tags=["jobs"])
    async def purge(body: m.PurgeRequest) -> m.PurgeResult:
        """Delete ended jobs (done, error) from the history for good, oldest first.

        Every version of each goes; reading one afterwards is a 404. Jobs not ended are
        never taken. `before` keeps jobs that ended later, `keep` the newest matches.
        """
        flt = JobFilter(status=body.status, circle=body.circle, topic=body.topic, dead=body.dead)
        count = await api.purge(flt, before=body.before, keep=body.keep, limit=body.limit)
        return m.PurgeResult(purged=count)

    for path in ("/api/jobs/batch", "/api/jobs/purge", "/api/jobs/graph"):

        @app.api_route(
            path,
            methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
            include_in_schema=False,
        )
        async def post_only() -> Response:
            # Without this, GET /api/jobs/batch (/purge, /graph) would reach GET /api/jobs/{id}.
            response = refusal(405, "Method Not Allowed")
            response.headers["Allow"] = "POST"
            return response

    @app.get("/api/jobs/{job_id}", responses=NOT_FOUND, tags=["jobs"])
    async def get_job(job_id: JobId) -> m.JobDetail:
        """One job's current state and its version history."""
        job = await api.job(job_id)
        history = await api.history(job_id)
        return m.JobDetail(job=job, history=history)

    @app.post("/api/jobs", status_code=201, response_model=JobView, tags=["jobs"])
    async def submit(body: m.SubmitRequest) -> Any:
        """Create a job; refused params are a 422 naming line and column."""
        try:
            view = await api.submit_spec(body.spec())
        except JobRefused as exc:
            return JSONResponse(refused_submission(exc).model_dump(), status_code=422)
        return view

    @app.post("/api/jobs/{job_id}/cancel", responses={**NOT_FOUND, **CONFLICT}, tags=["jobs"])
    async def cancel(job_id: JobId) -> JobView:
        """End a waiting or running job as cancelled."""
        return await changing(api.cancel(job_id))

    @app.post("/api/jobs/{job_id}/requeue", responses={**NOT_FOUND, **CONFLICT}, tags=["jobs"])
    async def requeue(job_id: JobId) -> JobView:
        """Run an ended job again under its id."""
        return await changing(api.requeue(job_id))

    @app.get("/api/dead", response_model=m.JobPage, tags=["jobs"])
    async def list_dead(
        circle: Annotated[str | None, Query(pattern=m.NAME_PATTERN)] = None,
        topic: Annotated[str | None, Query(pattern=m.NAME_PATTERN)] = None,
        text: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before_id: Annotated[int | None, Query(ge=1, le=m.MAX_JOB_ID)] = None,
    ) -> Response:
        """Dead letters, newest first: jobs that ended in error after their last attempt."""
        flt = JobFilter(circle=circle, topic=topic, text=text)
        views = await api.dead(flt, limit=limit, before_id=before_id)
        more = views[-1].job_id if len(views) == limit else None
        return JSONResponse({"jobs": [job_wire(v) for v in views], "next_before_id": more})

    @app.post("/api/dead/requeue", response_model=list[JobView], responses=NOT_FOUND, tags=["jobs"])
    async def requeue_dead(body: m.DeadRequeueRequest) -> Response:
        """Run dead letters again under their ids: those listed, or with `all` every one."""
        if body.all:
            flt = JobFilter(dead=True, circle=body.circle, topic=body.topic)
            views = await api.requeue_many(flt)
        else:
            views = []
            for job_id in body.ids:
                view = await api.job(job_id)
                # Only dead letters: a done job listed here by mistake is left alone.
                if view.dead:
                    views.append(await api.requeue(job_id))
        return JSONResponse([job_wire(v) for v in views])

    @app.get("/api/queues", tags=["queues"])
    async def queues() -> list[m.Queue]:
        """Every queue with its depth, counts per status and rate of jobs ending."""
        rates = ctx.stats.rates()
        return [m.Queue.of(q, rates.get(q.name, 0.0)) for q in await api.queues()]

    @app.post("/api/queues/{circle}/{topic}/pause", status_code=204, tags=["queues"])
    async def pause(circle: Name, topic: Name) -> None:
        """Stop handing out one queue's jobs."""
        await api.pause_queue(circle, topic)

    @app.post("/api/queues/{circle}/{topic}/resume", status_code=204, tags=["queues"])
    async def resume(circle: Name, topic: Name) -> None:
        """Hand out a paused queue's jobs again."""
        await api.resume_queue(circle, topic)

    @app.get("/api/queues/{circle}/{topic}/limits", tags=["queues"])
    async def limits(circle: Name, topic: Name) -> LimitsView:
        """One queue's limits over every worker, its active jobs and what holds it."""
        found = {q.name: q for q in await api.queue_limits()}
        return found.get(f"{circle}/{topic}") or LimitsView(circle, topic)

    @app.put("/api/queues/{circle}/{topic}/limits", tags=["queues"], response_model=LimitsView)
    async def set_limits(circle: Name, topic: Name, body: m.LimitsRequest) -> Any:
        """Set one queue's limits for every worker at once; 0 and "" lift a limit."""
        try:
            return await api.set_queue_limits(
                circle, topic, max_active=body.max_active, rate=body.rate
            )
        except JobRefused as exc:
            return refusal(422, str(exc))

    @app.get("/api/schedules", tags=["schedules"])
    async def schedules() -> list[ScheduleView]:
        """Every schedule (periodic job) with its state and its last and next fire."""
        return api.schedules()

    @app.post(
        "/api/schedules",
        status_code=201,
        response_model=ScheduleView,
        responses={422: {"model": m.Refusal, "description": "A bad cron, interval or zone"}},
        tags=["schedules"],
    )
    async def add_schedule(body: m.ScheduleRequest) -> Any:
        """Add (or replace) a run-time schedule, kept in the engine's data dir."""
        try:
            options = cast(ScheduleOptions, body.model_dump(exclude={"name", "params"}))
            return await api.add_schedule(body.name, body.params, **options)
        except JobRefused as exc:
            return refusal(422, str(exc))

    schedule_responses: dict[int | str, dict[str, Any]] = {
        404: {"model": m.Refusal, "description": "No such schedule"}
    }

    @app.post(
        "/api/schedules/{name}/{action}",
        response_model=ScheduleView,
        responses=schedule_responses,
        tags=["schedules"],
    )
    async def pause_or_resume_schedule(name: Name, action: Literal["pause", "resume"]) -> Any:
        """`pause` stops a schedule firing; `resume` fires it again from its next fire after now."""
        if action == "pause":
            return await api.pause_schedule(name)
        return await api.resume_schedule(name)

    @app.delete(
        "/api/schedules/{name}",
        status_code=204,
        responses={**schedule_responses, **CONFLICT},
        tags=["schedules"],
    )
    async def remove_schedule(name: Name) -> Response:
        """Remove a run-time schedule (one from the config is a 409)."""
        # A missing schedule is a 404 (the app's handler); one from the config is a 409.
        try:
            await api.remove_schedule(name)
        except ScheduleNotFound:
            raise
        except JobRefused as exc:
            return refusal(409, str(exc))
        return Response(status_code=204)

    @app.get("/api/workers", tags=["services"])
    async def workers() -> list[WorkerView]:
        """Every watchdog on the shared server: host, slots, heartbeat, jobs held, state.

        `state` is "alive" while its heartbeat is fresh and "lost" once it expired (its
        jobs are being reclaimed); a lost worker stays listed for some minutes.
        """
        return await api.workers()

    @app.get("/api/services", tags=["services"])
    async def services() -> list[m.Service]:
        """Every engine service with its state."""
        return [m.Service.of(s) for s in api.services()]

    @app.get("/api/actions", tags=["heroscript"])
    async def actions() -> list[m.Action]:
        """Every action the engine can run, with a HeroScript template."""
        return [
            m.Action(
                method=a.method, doc=a.doc, params=[list(p) for p in a.params], template=a.template
            )
            for a in api.actions()
        ]

    @app.post("/api/validate", tags=["heroscript"])
    async def validate(body: m.ValidateRequest) -> m.Validation:
        """Every problem of a HeroScript text, as the submit form shows them while typing."""
        return m.Validation(problems=[problem(d) for d in await api.validate(body.text)])

    @app.post(
        "/rpc",
        tags=["rpc"],
        openapi_extra={"requestBody": m.RPC_REQUEST_BODY},
        responses={
            200: m.RPC_RESPONSE,
            204: {"description": "Only notifications were sent"},
            400: {**m.RPC_RESPONSE, "description": "Not a JSON-RPC request (-32700, -32600)"},
        },
    )
    async def rpc(request: Request) -> Response:
        """JSON-RPC 2.0 over the actor registry; `rpc.discover` returns the OpenRPC document.

        A body that is not a JSON-RPC request at all is a 400 carrying the JSON-RPC error;
        a well-formed call answers 200, also when the call itself fails.
        """
        body = await request.body()
        malformed = m.rpc_envelope_error(body)
        if malformed is not None:
            return JSONResponse(malformed, status_code=400)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(ctx.rpc_timeout):
                answer = await api.rpc(body)
        except TimeoutError:
            answer = m.rpc_timeout_answer(body, ctx.rpc_timeout)
            _record_rpc(ctx, body, "timed out", started)
        else:
            _record_rpc(ctx, body, m.rpc_outcome(answer), started)
        if answer is None:
            return Response(status_code=204)
        return JSONResponse(answer)

    @app.get(
        "/events",
        tags=["events"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {"schema": m.SSE_EVENT}}}},
    )
    async def events(
        types: Annotated[str, Query(pattern=TYPES_PATTERN)] = ",".join(sorted(DEFAULT_TYPES)),
    ) -> Response:
        """Server-sent events: `ready`, then `job`, `job_log`, `job_progress`, `service`.

        At most `ui.max_event_streams` are open at once; one more is a 503.
        """
        if not ctx.streams.admit():
            response = refusal(
                503,
                f"too many event streams open (ui.max_event_streams is {ctx.streams.limit}); "
                "close one, or try again later",
            )
            response.headers["Retry-After"] = str(STREAMS_RETRY_AFTER)
            return response
        hello = {"services": [m.Service.of(s).model_dump() for s in api.services()]}
        return _AdmittedStream(
            ctx.streams.release,
            ctx.streams.stream(frozenset(types.split(",")), hello),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> PlainTextResponse:
        """Prometheus text format: jobs by status, queue depth, throughput, latency histogram."""
        try:
            queue_views = await api.queues()
        except EngineUnavailable:
            queue_views = []
        states = {s.name: s.state.value for s in api.services()}
        try:
            schedule_views = api.schedules()
        except EngineUnavailable:
            schedule_views = []
        try:
            worker_views = await api.workers()
        except EngineUnavailable:
            worker_views = []
        return PlainTextResponse(
            render_prometheus(
                ctx.stats, queue_views, states, api.health(), schedule_views, worker_views
            ),
            media_type="text/plain; version=0.0.4",
        )

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if ctx.rules.token:
        declare_bearer(app)
    return app


def serve_another(app: FastAPI, ctx: UIContext) -> FastAPI:
    """A built app, no longer served, serving `ctx` from now on.

    The app must declare a bearer token exactly when `ctx` has one (`build_app` decided
    that from its first context).
    """
    app.state.serve(ctx)
    return app


def _record_rpc(ctx: UIContext, body: bytes, outcome: str, started: float) -> None:
    """One line per /rpc call, in the log and on the bus: the method, how long, how it ended.

    Actions run with the engine's rights, so who ran what, and whether it finished, should
    be visible afterwards like a job is.
    """
    ms = (time.perf_counter() - started) * 1000
    level = logging.INFO if outcome == "ok" else logging.WARNING
    message = f"rpc {m.rpc_methods(body)} {outcome} in {ms:.1f} ms"
    log.log(level, message)
    if ctx.bus is not None:
        ctx.bus.publish(
            LogEmitted(source="rpc", level=logging.getLevelName(level).lower(), message=message)
        )
