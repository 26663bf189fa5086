"""The service contract every engine part follows: start, stop, and a status to show."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum

from core.events import EventBus, LogEmitted, ServiceStateChanged


class ServiceState(StrEnum):
    """Life stages of a service."""

    DISABLED = "disabled"
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    FAILED = "failed"


class ServiceStartError(RuntimeError):
    """A service could not start; the message is meant for the user as it is."""


@dataclass(frozen=True)
class ServiceStatus:
    """A snapshot of one service, for the TUI, the HTTP UI and `--serve` logs."""

    name: str
    state: ServiceState
    address: str = ""
    pid: int | None = None
    started_at: float | None = None
    last_error: str = ""
    detail: str = ""

    @property
    def uptime(self) -> float | None:
        """Seconds since the service last reached RUNNING, or None when not running."""
        if self.state is not ServiceState.RUNNING or self.started_at is None:
            return None
        return max(0.0, time.time() - self.started_at)


class Service(ABC):
    """Base for the engine's services; subclasses implement `_start` and `_stop`."""

    name: str = "service"

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.log = logging.getLogger(f"core.{self.name}")
        self._state = ServiceState.STOPPED
        self._started_at: float | None = None
        self._last_error = ""

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
        self.set_state(ServiceState.STOPPING)
        try:
            await self._stop()
        finally:
            self._started_at = None
            self.set_state(ServiceState.STOPPED)

    @abstractmethod
    async def _start(self) -> None: ...

    @abstractmethod
    async def _stop(self) -> None: ...
