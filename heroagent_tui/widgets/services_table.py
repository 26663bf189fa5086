"""A table of the engine's services: state, address, pid, uptime and the last error."""

from __future__ import annotations

from textual.widgets import DataTable

from core.api import ServiceStatus
from heroagent_tui.format import DisplayFormat

COLUMNS = ("service", "state", "address", "pid", "uptime", "detail")


class ServicesTable(DataTable[str]):
    """One row per service, keyed by its name; cells change in place."""

    def __init__(self, fmt: DisplayFormat, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.fmt = fmt

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)

    def show(self, statuses: list[ServiceStatus], now: float) -> None:
        """Add missing rows and update every cell of the others."""
        for status in statuses:
            cells = self._cells(status, now)
            if status.name not in self.rows:
                self.add_row(*cells, key=status.name)
                continue
            for column, value in zip(COLUMNS[1:], cells[1:], strict=True):
                self.update_cell(status.name, column, value, update_width=True)

    def _cells(self, status: ServiceStatus, now: float) -> tuple[str, ...]:
        state = status.state.value
        uptime = None
        if state == "running" and status.started_at is not None:
            uptime = max(0.0, now - status.started_at)
        detail = status.last_error if state == "failed" else status.detail
        return (
            status.name,
            state,
            self.fmt.address(status.address),
            self.fmt.pid(status.pid),
            self.fmt.uptime(uptime),
            self.fmt.path(detail),
        )
