"""The composition root (the seed's server factory): services start in order, stop in reverse."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from core.config import Config
from core.events import EventBus
from core.redis_server import RedisService
from core.services import Service, ServiceStartError, ServiceState, ServiceStatus
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
    # Services the engine cannot run without; a failure of one stops start-up.
    essential: bool = False


def _jobs(engine: Engine) -> Service:
    from core.jobs.service import JobsService

    return JobsService(engine.config, engine.bus, engine.redis)


def _ui(engine: Engine) -> Service:
    from core.http_ui.service import HttpUIService

    return HttpUIService(engine.config, engine.bus, engine)


def default_services() -> list[ServiceSpec]:
    """The services of a full engine, in start order. Later parts append theirs here."""
    return [
        ServiceSpec(
            "redis",
            lambda c: c.enable_redis,
            lambda e: RedisService(e.config, e.bus),
            essential=True,
        ),
        ServiceSpec(
            "webdav",
            lambda c: c.enable_webdav,
            lambda e: WebDAVService(e.config, e.bus),
        ),
        ServiceSpec("jobs", lambda c: c.enable_jobs and c.enable_redis, _jobs),
        # Last: the UI serves the others, and stops first, while they still answer.
        ServiceSpec("ui", lambda c: c.enable_ui, _ui),
    ]


class EngineStartError(RuntimeError):
    """A service the engine needs could not start."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service


class Engine:
    """Owns the services of one HeroAgent instance.

    Use as `async with Engine(config) as engine:`. With `fail_fast` (headless runs),
    any service that fails to start stops start-up and raises EngineStartError; without
    it (the TUI), only an essential service does, and the others show their error.
    """

    def __init__(
        self,
        config: Config,
        *,
        services: Sequence[ServiceSpec] | None = None,
        fail_fast: bool = True,
        bus: EventBus | None = None,
    ) -> None:
        self.config = config
        self.bus = bus or EventBus()
        self.fail_fast = fail_fast
        self._specs = list(services if services is not None else default_services())
        self.services: dict[str, Service] = {}
        self._disabled: list[str] = []
        for spec in self._specs:
            if spec.enabled(config):
                self.services[spec.name] = spec.build(self)
            else:
                self._disabled.append(spec.name)
        self._started: list[Service] = []

    @property
    def jobs(self) -> JobManager:
        """The job manager (raises RuntimeError while the jobs service is not running)."""
        from core.jobs.service import JobsService

        service = self.services.get("jobs")
        if not isinstance(service, JobsService) or service.manager is None:
            raise RuntimeError("the jobs service is not running")
        return service.manager

    @property
    def redis(self) -> RedisService:
        """The Redis service (raises KeyError when disabled)."""
        service = self.services["redis"]
        assert isinstance(service, RedisService)
        return service

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

    async def start(self) -> None:
        """Start every enabled service in order."""
        essential = {spec.name for spec in self._specs if spec.essential}
        for name, service in self.services.items():
            try:
                await service.start()
            except ServiceStartError as exc:
                if self.fail_fast or name in essential:
                    await self.stop()
                    raise EngineStartError(name, str(exc)) from None
                log.error("%s failed to start: %s", name, exc)
                continue
            self._started.append(service)
            log.info("%s running %s", name, service.address())

    async def stop(self) -> None:
        """Stop the started services in reverse order; every one is tried."""
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
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
        """Stop one service at run time."""
        service = self.services[name]
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
