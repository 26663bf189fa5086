"""The actors and the local job slots as services, and the builders `heroagent worker` shares."""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Callable

from core.config import Config
from core.events.bus import EventBus
from core.heroscript import ActorRegistry, ActorsSettings
from core.heroscript.tools import ScriptTools
from core.rhai.host import limits_from_config
from core.services import JobsPartService, Service
from core.watchdog.pool import WatchDog, WatchDogSettings
from core.watchdog.processors import Processors, ProcessorSettings


def build_registry(config: Config) -> ActorRegistry:
    """The actor registry as the config describes it (imports modules: call off the loop)."""
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
            rhai_limits=limits_from_config(config.rhai),
        ),
    )


def watchdog_settings(config: Config) -> WatchDogSettings:
    """Pool settings from `jobs.*`."""
    return WatchDogSettings(
        worker_count=config.jobs.worker_count,
        lease_seconds=config.jobs.lease_seconds,
        max_attempts=config.jobs.max_attempts,
    )


class ActorsService(Service):
    """Loads the actor registry (built-ins, entry points, configured modules) at start.

    The engine's ScriptTools, the job validator and the local watchdog all use it.
    """

    name = "actors"

    def __init__(self, config: Config, bus: EventBus, scripts: ScriptTools) -> None:
        super().__init__(bus)
        self.config = config
        self.scripts = scripts

    def detail(self) -> str:
        """How many actions are registered."""
        registry = self.scripts.registry
        return f"{len(registry.actions())} actions" if registry is not None else ""

    async def _start(self) -> None:
        self.scripts.registry = await asyncio.to_thread(build_registry, self.config)

    async def _stop(self) -> None:
        # The registry stays loaded: validation and templates keep working while stopped.
        return None


def slots_detail(slots: int, completed: int, abandoned: int, restarts: int) -> str:
    """The watchdog's line for people: slots, jobs completed, what is wrong."""
    text = f"{slots} slots, {completed} completed"
    if abandoned:
        text += f", {abandoned} held by threads abandoned after timeout"
    if restarts:
        text += f", {restarts} loop restarts"
    return text


class SlotsService(JobsPartService):
    """The engine's own `jobs.worker_count` job slots, in this process or in a child."""

    name = "watchdog"

    @property
    @abstractmethod
    def abandoned_slots(self) -> int:
        """Slots held by a sync action's thread that outlived its job's timeout or cancel."""

    @property
    @abstractmethod
    def busy_slots(self) -> int:
        """Slots running a job or held by such a thread."""

    @abstractmethod
    async def drain(self, hint: str, say: Callable[[str], None]) -> int:
        """Take no more jobs; let the running ones finish for up to `jobs.drain_seconds`.

        Returns how many still run (`stop` hands them back).
        """

    @abstractmethod
    def cancel(self, job_id: int) -> bool:
        """Stop a job if it runs here; False when it does not."""


class WatchDogService(SlotsService):
    """Runs `jobs.worker_count` job slots in this process, like `heroagent worker` does."""

    # The pool while the service runs.
    watchdog: WatchDog | None = None

    def address(self) -> str:
        """The worker id other processes see in Redis."""
        return self.watchdog.worker_id if self.watchdog is not None else ""

    @property
    def abandoned_slots(self) -> int:
        """Slots held by a sync action's thread that outlived its job's timeout or cancel."""
        return self.watchdog.abandoned if self.watchdog is not None else 0

    @property
    def busy_slots(self) -> int:
        """Slots running a job or held by such a thread."""
        return self.watchdog.busy if self.watchdog is not None else 0

    def detail(self) -> str:
        """Slots, jobs completed here, and slots that timed-out threads still hold."""
        dog = self.watchdog
        if dog is None:
            return ""
        return slots_detail(
            self.config.jobs.worker_count, dog.completed, dog.abandoned, dog.restarts
        )

    async def _start(self) -> None:
        registry = self.scripts.registry
        if registry is None:
            raise RuntimeError("the actors are not loaded")
        self.watchdog = WatchDog(
            self.redis_service.loop_client(),
            build_processors(self.config, registry),
            watchdog_settings(self.config),
            bus=self.bus,
        )
        await self.watchdog.start()

    async def _stop(self) -> None:
        dog, self.watchdog = self.watchdog, None
        if dog is not None:
            try:
                await dog.stop()
            finally:
                await dog.redis.aclose()

    async def drain(self, hint: str, say: Callable[[str], None]) -> int:
        """Take no more jobs; let the running ones finish for up to `jobs.drain_seconds`.

        Returns how many still run (`stop` hands them back); see `WatchDog.drain`.
        """
        if self.watchdog is None:
            return 0
        return await self.watchdog.drain(self.config.jobs.drain_seconds, hint=hint, say=say)

    def cancel(self, job_id: int) -> bool:
        """Stop a job if it runs here; False when it does not."""
        return self.watchdog is not None and self.watchdog.cancel(job_id)
