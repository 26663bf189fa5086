"""What every screen is handed: the engine API, the display format, events, panel facts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from textual.signal import Signal

from core.api import EngineAPI
from core.events import LogEmitted
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.format import DisplayFormat

LOG_BUFFER = 10_000


@dataclass(frozen=True)
class PanelFacts:
    """Settings a service panel shows that are not part of a service's status."""

    user: str = ""
    root: str = ""
    """The folder a service serves, shown as a tree."""


@dataclass
class AppContext:
    """Attributes passed down to every screen."""

    api: EngineAPI
    events: Signal[EngineBatch]
    fmt: DisplayFormat = field(default_factory=DisplayFormat)
    webdav: PanelFacts = field(default_factory=PanelFacts)
    logs: deque[LogEmitted] = field(default_factory=lambda: deque(maxlen=LOG_BUFFER))
    """Engine, service and job log lines since start, bounded; the Logs screen shows them."""
