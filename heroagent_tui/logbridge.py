"""Forwards the engine's Python log records to its event bus, so the Logs view shows them."""

from __future__ import annotations

import logging

from core.events import LogEmitted
from core.events.bus import EventBus


class BusLogHandler(logging.Handler):
    """Publishes records of `core.*` loggers; services' own lines already reach the bus."""

    def __init__(self, bus: EventBus, skip: set[str]) -> None:
        super().__init__()
        self.bus = bus
        # Loggers of services that publish their lines themselves (Service.emit_log).
        self.skip = skip

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in self.skip:
            return
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break the engine
            message = str(record.msg)
        source = record.name.removeprefix("core.").split(".")[0] or "engine"
        self.bus.publish(LogEmitted(source=source, level=record.levelname.lower(), message=message))
