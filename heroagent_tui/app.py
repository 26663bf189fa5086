"""The HeroAgent terminal app: a live view of the engine's services (more screens follow)."""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header

from core.engine import Engine
from core.events import ServiceStateChanged


class HeroAgentApp(App[int]):
    """Shows the engine it is given; never starts or stops it."""

    TITLE = "HeroAgent"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit", id="app.quit")]

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="services", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#services", DataTable)
        table.add_columns("service", "state", "address", "pid", "uptime", "detail")
        for status in self.engine.statuses():
            table.add_row(status.name, status.state.value, "", "", "", "", key=status.name)
        self._refresh_services()
        self.run_worker(self._follow_events(), exclusive=True, group="events")
        self.set_interval(1.0, self._refresh_services)

    async def _follow_events(self) -> None:
        with self.engine.bus.subscribe(maxsize=1000) as events:
            async for event in events:
                if isinstance(event, ServiceStateChanged):
                    self._refresh_services()

    def _refresh_services(self) -> None:
        table = self.query_one("#services", DataTable)
        for status in self.engine.statuses():
            uptime = "" if status.uptime is None else _format_uptime(status.uptime)
            detail = status.last_error if status.state.value == "failed" else status.detail
            values = (status.state.value, status.address, status.pid or "", uptime, detail)
            for column, value in zip(list(table.columns)[1:], values, strict=True):
                table.update_cell(status.name, column, str(value))


def _format_uptime(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


def create_app(engine: Engine) -> HeroAgentApp:
    """The one app factory shared by the CLI and the tests."""
    return HeroAgentApp(engine)
