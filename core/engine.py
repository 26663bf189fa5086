"""The composition root (the seed's server factory): builds every part, starts them in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from core.api import EngineAPI
from core.config import Config
from core.events import ServiceState, ServiceStatus
from core.events.bus import EventBus
from core.filemodes import make_private
from core.heroscript.tools import ScriptTools
from core.http_ui.service import HttpUIService
from core.jobs.history import HistoryService
from core.jobs.relay import EventRelay
from core.jobs.scheduler import SchedulerService
from core.memory import freeze_long_lived, thaw_long_lived
from core.redis_server.service import RedisService
from core.remote import RequestServer
from core.rhai.tools import RhaiTools
from core.services import Service, ServiceStartError
from core.watchdog.process import ChildWatchDogService
from core.watchdog.service import ActorsService, SlotsService, WatchDogService
from core.webdav.inbox import Inbox
from core.webdav.service import WebDAVService

if TYPE_CHECKING:
    from core.jobs import JobManager

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    """How the engine builds one service: its name, whether config enables it, a factory."""

    name: str
    enabled: Callable[[Config], bool]
    build: Callable[[Engine], Service]
    # Services this one needs; it is disabled when one of them is.
    requires: tuple[str, ...] = ()
    # Services the engine cannot run without; a failure of one stops start-up.
    essential: bool = False


def _redis(engine: Engine) -> Service:
    engine.redis_service = RedisService(engine.config, engine.bus)
    return engine.redis_service


def _history(engine: Engine) -> Service:
    engine.history = HistoryService(engine.config, engine.bus, engine.redis, engine.scripts)
    return engine.history


def _scheduler(engine: Engine) -> Service:
    history = engine.history
    engine.scheduler = SchedulerService(
        engine.config, engine.bus, lambda: history.manager if history is not None else None
    )
    return engine.scheduler


def _watchdog(engine: Engine) -> Service:
    # The terminal app asks for a child: jobs' CPU then never delays a key on its loop.
    slots = ChildWatchDogService if engine.slots_in_child else WatchDogService
    engine.watchdog = slots(engine.config, engine.bus, engine.redis, engine.scripts)
    return engine.watchdog


def _requests(engine: Engine) -> Service:
    return RequestServer(engine.api, engine.redis.loop_client, engine.bus)


def _inbox(engine: Engine) -> Service:
    return Inbox(engine.config.webdav_root, engine.bus, engine.api)


def default_services() -> list[ServiceSpec]:
    """The services of a full engine, in start order (they stop in reverse)."""
    return [
        ServiceSpec("redis", lambda c: c.enable_redis, _redis, essential=True),
        ServiceSpec("webdav", lambda c: c.enable_webdav, lambda e: WebDAVService(e.config, e.bus)),
        ServiceSpec(
            "actors",
            lambda c: c.enable_jobs,
            lambda e: ActorsService(e.config, e.bus, e.scripts),
        ),
        ServiceSpec("jobs", lambda c: c.enable_jobs, _history, requires=("redis", "actors")),
        ServiceSpec(
            "relay", lambda c: c.enable_jobs, lambda e: EventRelay(e.bus, e.redis), ("jobs",)
        ),
        ServiceSpec("scheduler", lambda c: c.enable_jobs, _scheduler, ("jobs",)),
        ServiceSpec("watchdog", lambda c: c.jobs.worker_count > 0, _watchdog, ("jobs",)),
        ServiceSpec("requests", lambda c: True, _requests, ("jobs",)),
        ServiceSpec("inbox", lambda c: True, _inbox, ("jobs", "webdav")),
        # Last: the UI serves the others, and stops first, while they still answer.
        ServiceSpec("ui", lambda c: c.enable_ui, lambda e: HttpUIService(e.config, e.bus, e.api)),
    ]


class EngineStartError(RuntimeError):
    """A service the engine needs could not start."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service


class Engine:
    """Owns the services of one HeroAgent instance and the one `EngineAPI` over them.

    Use as `async with Engine(config) as engine:`. With `fail_fast` (headless runs),
    any service that fails to start stops start-up and raises EngineStartError; without
    it (the TUI), only an essential service does, and the others show their error. With
    `child_slots` (the TUI) and `jobs.worker_process` on, the job slots run in a child
    process the engine supervises (`core/watchdog/process.py`) rather than on its loop.
    """

    def __init__(
        self,
        config: Config,
        *,
        services: Sequence[ServiceSpec] | None = None,
        fail_fast: bool = True,
        bus: EventBus | None = None,
        child_slots: bool = False,
    ) -> None:
        self.config = config
        self.slots_in_child = child_slots and config.jobs.worker_process
        self.bus = bus or EventBus()
        self.fail_fast = fail_fast
        self.scripts = ScriptTools()
        self.rhai = RhaiTools()
        self.redis_service: RedisService | None = None
        self.history: HistoryService | None = None
        self.watchdog: SlotsService | None = None
        self.scheduler: SchedulerService | None = None
        self._specs = list(services if services is not None else default_services())
        self._essential = {spec.name for spec in self._specs if spec.essential}
        self.services: dict[str, Service] = {}
        self._api: EngineAPI | None = None
        for spec in self._specs:
            if spec.enabled(config) and all(name in self.services for name in spec.requires):
                self.services[spec.name] = spec.build(self)
        self._started: list[Service] = []
        # Whether this engine froze what its start made (see core.memory).
        self._frozen = False

    @property
    def api(self) -> EngineAPI:
        """The engine's one API, which every front end is handed."""
        if self._api is None:
            self._api = EngineAPI(self)
        return self._api

    @property
    def jobs(self) -> JobManager:
        """The job manager (raises RuntimeError while the jobs service is not running)."""
        if self.history is None or self.history.manager is None:
            raise RuntimeError("the jobs service is not running")
        return self.history.manager

    @property
    def redis(self) -> RedisService:
        """The Redis service (raises KeyError when disabled)."""
        if self.redis_service is None:
            raise KeyError("redis")
        return self.redis_service

    def statuses(self) -> list[ServiceStatus]:
        """A snapshot of every service, disabled ones included, in start order."""
        result = []
        for spec in self._specs:
            service = self.services.get(spec.name)
            if service is None:
                result.append(ServiceStatus(spec.name, ServiceState.DISABLED))
            else:
                result.append(service.status())
        return result

    def _preflight(self, failed: set[str]) -> None:
        """Ask every service to check its credentials before the first one binds anything."""
        problems: list[str] = []
        for name, service in self.services.items():
            try:
                service.preflight()
            except ServiceStartError as exc:
                service.set_state(ServiceState.FAILED, str(exc))
                failed.add(name)
                problems.append(f"{name}: {exc}")
        if problems and (self.fail_fast or failed & self._essential):
            first, _, message = problems[0].partition(": ")
            raise EngineStartError(first, "; ".join([message, *problems[1:]]))
        for problem in problems:
            log.error("%s", problem)

    async def start(self) -> None:
        """Start every enabled service in order; a service whose needs failed is skipped."""
        try:
            make_private(self.config.data_path)
        except OSError as exc:
            raise EngineStartError("engine", f"data dir {self.config.data_path}: {exc}") from None
        failed: set[str] = set()
        self._preflight(failed)
        needs = {spec.name: spec.requires for spec in self._specs}
        for name, service in self.services.items():
            if name in failed:
                continue
            missing = [n for n in needs.get(name, ()) if n in failed]
            if missing:
                failed.add(name)
                service.set_state(ServiceState.FAILED, f"needs {', '.join(missing)}")
                continue
            try:
                await service.start()
            except ServiceStartError as exc:
                await self._start_failed(service, str(exc), failed)
                continue
            except Exception as exc:  # any start failure is one line, not a traceback
                log.debug("%s failed to start", name, exc_info=True)
                await self._start_failed(service, f"{type(exc).__name__}: {exc}", failed)
                continue
            except BaseException:
                await self._release(service)
                await self.stop()
                raise
            self._started.append(service)
            log.info("%s running %s", name, service.address())
        # What start-up made lives as long as the engine: full collections skip it.
        if not self._frozen:
            self._frozen = True
            freeze_long_lived()

    async def _start_failed(self, service: Service, message: str, failed: set[str]) -> None:
        name = service.name
        # What a service got going before it failed (a child process, a socket) goes too.
        await self._release(service)
        if self.fail_fast or name in self._essential:
            await self.stop()
            raise EngineStartError(name, message) from None
        log.error("%s failed to start: %s", name, message)
        failed.add(name)

    @classmethod
    async def _release(cls, service: Service) -> None:
        # What a service got going before it failed goes, under the same deadline as a stop.
        await cls._stop_within_deadline(service)

    async def drain(
        self, *, hint: str = "signal again to stop now", say: Callable[[str], None] = log.info
    ) -> int:
        """Let the local jobs finish before a stop: take no new ones, wait `jobs.drain_seconds`.

        Every service keeps running meanwhile, so finished jobs are persisted and the UI
        answers; it returns at once when no job runs here. Returns how many still run;
        `stop` hands them back to their queues. Cancelling it ends only the wait.
        """
        watchdog = self.watchdog
        if watchdog is None or watchdog.state is not ServiceState.RUNNING:
            return 0
        return await watchdog.drain(hint, say)

    async def stop(self) -> None:
        """Stop the started services in reverse order, each under its deadline; Redis last.

        Redis goes in a `finally`: a stop that fails, hangs past its deadline or is
        cancelled (a second Ctrl-C) must not leave the server child running.
        """
        redis = self.redis_service
        if self._frozen:
            self._frozen = False
            thaw_long_lived()
        try:
            while self._started:
                service = self._started.pop()
                if service is redis:
                    continue
                await self._stop_within_deadline(service)
        finally:
            if redis is not None and redis.state not in (
                ServiceState.STOPPED,
                ServiceState.DISABLED,
            ):
                await self._stop_within_deadline(redis)

    @staticmethod
    async def _stop_within_deadline(service: Service) -> None:
        try:
            async with asyncio.timeout(service.stop_timeout):
                await service.stop()
        except TimeoutError:
            log.error(
                "%s did not stop within %.0f s; left behind", service.name, service.stop_timeout
            )
        except Exception:
            log.exception("%s did not stop cleanly", service.name)

    async def start_service(self, name: str) -> None:
        """Start one service at run time (the TUI's service panel)."""
        service = self.services[name]
        if service.state is ServiceState.RUNNING:
            return
        await service.start()
        self._started.append(service)

    async def stop_service(self, name: str) -> None:
        """Stop one service at run time, under its deadline (TimeoutError past it)."""
        service = self.services[name]
        async with asyncio.timeout(service.stop_timeout):
            await service.stop()
        if service in self._started:
            self._started.remove(service)

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
