"""The service contract every engine part follows: start, stop, and a status to show."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

from core.events import LogEmitted, ServiceState, ServiceStateChanged, ServiceStatus
from core.events.bus import EventBus

if TYPE_CHECKING:
    from core.config import Config
    from core.heroscript.tools import ScriptTools
    from core.redis_server.service import RedisService

__all__ = [
    "JobsPartService",
    "Service",
    "ServiceStartError",
    "ServiceState",
    "ServiceStatus",
    "cancel_until_done",
    "supervised_task",
]

# A crashed background loop restarts after this long, doubling up to the cap.
RESTART_FIRST_SECONDS = 0.1
RESTART_MAX_SECONDS = 5.0

# A cancel can be lost on Python 3.11: asyncio.wait_for, which redis-py wraps around
# every command it sends, returns the result instead of raising when the cancel lands
# as the send completes, and the loop runs on. A task still running after this long is
# cancelled again; one that ends on its first cancel takes a loop turn or two.
RECANCEL_SECONDS = 0.05


async def cancel_until_done(
    tasks: Collection[asyncio.Task[Any]],
    seconds: float,
    *,
    grace: float = RECANCEL_SECONDS,
) -> set[asyncio.Task[Any]]:
    """Cancel the tasks and wait up to `seconds` for them, cancelling again any that run on.

    A task still running `grace` seconds after a cancel gets another; a longer `grace`
    leaves more time to a cleanup that runs on cancel (a child process killed and
    reaped). Returns the tasks still running at the deadline.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        slice_ = max(0.0, min(grace, deadline - loop.time()))
        _, pending = await asyncio.wait(pending, timeout=slice_)
        if loop.time() >= deadline:
            break
    return pending


def supervised_task(
    name: str,
    run: Callable[[], Awaitable[None]],
    log: logging.Logger,
    on_crash: Callable[[Exception], None] | None = None,
) -> asyncio.Task[None]:
    """Start `run` as a task that comes back when it crashes, instead of dying silently.

    A crash is logged with its traceback (and handed to `on_crash`); the loop restarts
    after a short pause that doubles up to a cap, so a persistent fault does not spin.
    Returning normally ends it; cancelling the task stops it.
    """

    async def keep_running() -> None:
        pause = RESTART_FIRST_SECONDS
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("%s crashed; restarting in %.1f s", name, pause)
                if on_crash is not None:
                    on_crash(exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_MAX_SECONDS)

    return asyncio.create_task(keep_running(), name=name)


class ServiceStartError(RuntimeError):
    """A service could not start; the message is meant for the user as it is."""


class Service(ABC):
    """Base for the engine's services; subclasses implement `_start` and `_stop`."""

    name: str = "service"
    # Seconds `Engine.stop` waits for this service's stop before it moves on without it.
    stop_timeout: float = 15.0

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.log = logging.getLogger(f"core.{self.name}")
        self._state = ServiceState.STOPPED
        self._started_at: float | None = None
        self._last_error = ""
        self._supervised: list[asyncio.Task[None]] = []
        self.restarts = 0

    @property
    def state(self) -> ServiceState:
        """The current state."""
        return self._state

    def address(self) -> str:
        """Where clients reach the service ("" when it has no address)."""
        return ""

    def pid(self) -> int | None:
        """The pid of the process doing the work, when it is a child process."""
        return None

    def detail(self) -> str:
        """One more line worth showing (a version, a count)."""
        return ""

    def status(self) -> ServiceStatus:
        """A snapshot of the service."""
        return ServiceStatus(
            name=self.name,
            state=self._state,
            address=self.address(),
            pid=self.pid(),
            started_at=self._started_at,
            last_error=self._last_error,
            detail=self.detail(),
        )

    def set_state(self, state: ServiceState, error: str = "") -> None:
        """Move to a new state and tell the bus."""
        self._state = state
        if state is ServiceState.RUNNING:
            self._started_at = time.time()
        if error:
            self._last_error = error
        self.bus.publish(
            ServiceStateChanged(
                service=self.name,
                state=state.value,
                address=self.address(),
                pid=self.pid(),
                error=error,
            )
        )

    def emit_log(self, level: int, message: str) -> None:
        """Log a line and publish it on the bus for the TUI's log view."""
        self.log.log(level, message)
        self.bus.publish(
            LogEmitted(source=self.name, level=logging.getLevelName(level).lower(), message=message)
        )

    def preflight(self) -> None:
        """Check what can be checked before anything binds (credentials); raise ServiceStartError.

        The engine asks every service before starting the first, so a config that would be
        refused later does not leave a server listening beyond loopback meanwhile.
        """
        return None

    async def start(self) -> None:
        """Start the service; on failure the state is FAILED and the error is raised."""
        self.set_state(ServiceState.STARTING)
        try:
            await self._start()
        except BaseException as exc:
            message = str(exc) or type(exc).__name__
            self.set_state(ServiceState.FAILED, message)
            raise
        self.set_state(ServiceState.RUNNING)

    async def stop(self) -> None:
        """Stop the service; safe to call in any state."""
        if self._state in (ServiceState.STOPPED, ServiceState.DISABLED):
            return
        # A service that failed to start is cleaned up but still shows that it failed.
        failed = self._state is ServiceState.FAILED
        self.set_state(ServiceState.STOPPING)
        try:
            await self._stop()
        finally:
            self._started_at = None
            self.set_state(ServiceState.FAILED if failed else ServiceState.STOPPED)

    def supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run a background loop that restarts when it crashes (see `supervised_task`).

        A crash is counted in `restarts` and shown as the last error. `stop_supervised`
        cancels it.
        """

        def crashed(exc: Exception) -> None:
            self.restarts += 1
            self._last_error = f"{name}: {type(exc).__name__}: {exc}"
            self.emit_log(logging.ERROR, f"{name} crashed ({exc}); restarting")

        task = supervised_task(f"{self.name}-{name}", run, self.log, crashed)
        self._supervised.append(task)
        return task

    async def stop_supervised(self, wait_seconds: float = 2.0) -> None:
        """Cancel every supervised loop and wait for them, at most `wait_seconds`."""
        tasks, self._supervised = self._supervised, []
        await cancel_until_done(tasks, wait_seconds)
        for task in tasks:
            if task.done() and not task.cancelled():
                with contextlib.suppress(Exception):
                    task.result()

    @abstractmethod
    async def _start(self) -> None: ...

    @abstractmethod
    async def _stop(self) -> None: ...


class JobsPartService(Service):
    """A service that runs jobs' scripts over the engine's Redis: the history, a watchdog.

    Both are built from the same three parts, handed over by the engine.
    """

    def __init__(
        self, config: Config, bus: EventBus, redis: RedisService, scripts: ScriptTools
    ) -> None:
        super().__init__(bus)
        self.config = config
        self.redis_service = redis
        self.scripts = scripts
