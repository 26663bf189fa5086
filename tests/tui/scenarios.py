"""Deterministic scenarios of every screen: shared by the snapshot tests and `make screenshots`."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from textual import events, on
from textual.pilot import Pilot
from textual.worker import WorkerState

from core.api import EngineAPI, JobView
from core.config import Config
from core.engine import Engine
from core.events import JobStateChanged
from heroagent_tui.app import HeroAgentApp, create_app
from heroagent_tui.format import DisplayFormat
from heroagent_tui.widgets.heroscript_area import HeroScriptArea

SIZE = (120, 36)
FROZEN = 1_790_000_000.0  # a fixed "now": 2026-09-21
QUIET_SECONDS = 1.3  # longer than the screens' settle timers (1 s)


class FixedFormat(DisplayFormat):
    """Shows the values that change between runs (ports, paths, pids, times) as constants."""

    def __init__(self, config: Config) -> None:
        super().__init__(clock=lambda: FROZEN)
        self.replacements = [
            (str(config.data_path), "~/.local/share/heroagent"),
            (f":{config.redis.tcp_port}", ":6379"),
            (f":{config.webdav.port}", ":8091"),
            (f":{config.ui.port}", ":8090"),
        ]

    def path(self, path: str) -> str:
        for real, shown in self.replacements:
            path = path.replace(real, shown)
        # Timings inside texts: a request log line, a playbook result.
        path = re.sub(r"\b\d+(\.\d+)? ms\b", "12 ms", path)
        path = re.sub(r"[\w.-]+:\d+:[0-9a-f]{6}\b", "host:4242:a1b2c3", path)  # worker ids
        return re.sub(r'"seconds": ?[0-9.e-]+', '"seconds":0.001', path)

    def address(self, address: str) -> str:
        return self.path(address)

    def pid(self, pid: int | None) -> str:
        return "" if pid is None else "4242"

    def uptime(self, seconds: float | None) -> str:
        return "" if seconds is None else "0:05:00"

    def timestamp(self, ts: float) -> str:
        return "2026-09-21 12:00:00" if ts else ""

    def clock_time(self, ts: float) -> str:
        return "12:00:00" if ts else ""

    def duration(self, seconds: float | None) -> str:
        return "" if seconds is None else "12 ms"

    def countdown(self, ts: float) -> str:
        return "in 4m 05s" if ts else ""

    def size(self, n: int) -> str:
        return "1.2 MiB"

    def worker(self, name: str) -> str:
        return "host:4242:a1b2c3" if name else ""

    def host(self, name: str) -> str:
        return "host" if name else ""

    def gauge(self, value: float) -> str:
        return "3"


class ScenarioApp(HeroAgentApp):
    """The app plus the engine it shows; the engine stops when the app unmounts."""

    engine: Engine

    @on(events.Unmount)
    async def _stop_engine(self) -> None:
        await self.engine.stop()


def scenario_app(config: Config, *, webdav: bool = True) -> ScenarioApp:
    """A fresh engine (so job ids start at 1) and an app with the fixed format."""
    engine = Engine(replace(config, enable_webdav=webdav), fail_fast=False)
    app = create_app(engine, fmt=FixedFormat(config), log_level="info", app_class=ScenarioApp)
    assert isinstance(app, ScenarioApp)
    app.state_path = None  # the theme is the scenario's, and nothing is written
    app.theme = "heroagent-dark"
    app.engine = engine
    return app


async def settle(app: HeroAgentApp, pilot: Pilot[Any], seconds: float = 20.0) -> None:
    """Wait until no event came for a while and every screen worker has finished."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        quiet = time.monotonic() - app.last_batch_at > QUIET_SECONDS
        busy = [
            w
            for w in app.workers
            # The bridge and DirectoryTree's loader run for as long as the app does.
            if w.group not in ("bridge", "_loader")
            and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        ]
        if quiet and not busy:
            return
    raise AssertionError(f"the app did not settle: quiet={quiet} busy={busy}")


async def seed(app: ScenarioApp) -> None:
    """Start the engine and run a few jobs to their end, in a fixed order."""
    await app.engine.start()
    api = app.engine.api
    specs = [
        ("!!fake.return_success message:'report ready'", "default", "reports"),
        ("!!fake.return_error message:'mailbox full'", "default", "email"),
        ("!!fake.return_success message:'sent'", "acme", "email"),
    ]
    for params, circle, topic in specs:
        job = await api.submit(params, circle=circle, topic=topic)
        # One at a time, so the order of everything that follows is fixed.
        await wait_until_ended(api, job.job_id)
    if "webdav" in app.engine.services:
        url = app.engine.services["webdav"].address()
        async with httpx.AsyncClient(base_url=url) as client:
            await client.put("notes.txt", content=b"hello")
            # Depth 0: the share itself, whose etag has a fixed length (a file's holds its
            # inode, whose digits differ from one file system to another).
            await client.request("PROPFIND", "/", headers={"Depth": "0"})
    if "ui" in app.engine.services:
        url = app.engine.services["ui"].address()
        async with httpx.AsyncClient(base_url=url) as client:
            # Answers whose size never changes, so the byte counts shown are fixed too.
            await client.get("/healthz")
            await client.get("/")


async def wait_until_ended(api: EngineAPI, job_id: int, seconds: float = 10.0) -> None:
    """Until the job is done or failed, from its own events."""
    await wait_until(api, job_id, lambda job: True, ("done", "error"), seconds)


async def seed_waiting(api: EngineAPI) -> None:
    """A delayed job and a failed attempt waiting an hour for its retry."""
    await api.submit("!!fake.return_success message:'later'", topic="reports", delay=3600)
    retried = await api.submit(
        "!!fake.return_error message:'mailbox full'",
        topic="email",
        retries=2,
        backoff_base=3600,
        backoff_max=7200,
    )
    await wait_until(api, retried.job_id, lambda job: job.attempts == 1, ("scheduled",))


async def wait_until(
    api: EngineAPI,
    job_id: int,
    done: Callable[[JobView], bool],
    statuses: tuple[str, ...],
    seconds: float = 10.0,
) -> None:
    """Until the job is in one of `statuses` and `done(job)` holds, from its own events."""
    with api.subscribe() as events:
        job = await api.job(job_id)
        if job.status in statuses and done(job):
            return
        async with asyncio.timeout(seconds):
            async for event in events:
                if not isinstance(event, JobStateChanged) or event.job_id != job_id:
                    continue
                if event.status in statuses and done(await api.job(job_id)):
                    return


@dataclass(frozen=True)
class Scenario:
    """A screen reached by keys from the seeded app."""

    name: str
    keys: tuple[str, ...] = ()
    theme: str = ""
    editor_text: str = ""
    # More jobs than every scenario's, made after the shared ones.
    extra: Callable[[EngineAPI], Awaitable[None]] | None = None

    def run_before(self, app: ScenarioApp) -> Callable[[Pilot[Any]], Awaitable[None]]:
        """The pilot steps: seed, go to the screen, wait until it is still."""

        async def steps(pilot: Pilot[Any]) -> None:
            await seed(app)
            if self.extra is not None:
                await self.extra(app.engine.api)
            await settle(app, pilot)
            if self.theme:
                app.theme = self.theme
                await settle(app, pilot)
            for key in self.keys:
                await pilot.press(key)
                await settle(app, pilot)
            if self.editor_text:
                editor = app.screen.query_one(HeroScriptArea)
                # A blinking cursor is drawn or not by the time of the shot: keep it drawn.
                editor.cursor_blink = False
                editor.load_text(self.editor_text)
                await settle(app, pilot)

        return steps


SUBMIT_TEXT = (
    "!!fake.return_success message:'hi'\n// a typo the editor catches:\n!!fake.sleep secs:1\n"
)

SCENARIOS = [
    Scenario("dashboard"),
    Scenario("queues", ("2",)),
    Scenario("jobs", ("3",)),
    Scenario("job_detail", ("3", "enter")),
    Scenario("logs", ("4",)),
    Scenario("submit", ("5",), editor_text=SUBMIT_TEXT),
    Scenario("webdav", ("6",)),
    Scenario("http", ("7",)),
    Scenario("scheduled", ("8",), extra=seed_waiting),
    Scenario("dead", ("9",)),
    Scenario("help", ("question_mark",)),
    Scenario("dashboard_light", (), theme="heroagent-light"),
]
