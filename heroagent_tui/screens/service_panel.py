"""WebDAV and HTTP panels: a service's state, URL, recent requests; start and stop it."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, DirectoryTree, Footer, Header, Static

from core.api import ServiceStatus
from core.events import LogEmitted, RequestServed, WebDAVRequest
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.context import AppContext
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.screens.confirm import ConfirmScreen
from heroagent_tui.widgets.view_bar import ViewBar

RECENT = 200
WRITES = frozenset({"PUT", "DELETE", "MKCOL", "MOVE", "COPY"})


class ServicePanelScreen(EngineScreen):
    """One optional service; works (and says so) when the service is absent or disabled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start", id="service.start"),
        Binding("S", "stop", "Stop", id="service.stop"),
        Binding("o", "open_browser", "Open in browser", id="service.open"),
    ]

    def __init__(self, ctx: AppContext, service: str, title: str) -> None:
        super().__init__(ctx)
        self.service = service
        self.title = title
        self.status: ServiceStatus | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield ViewBar("webdav" if self.service == "webdav" else "http")
        with Horizontal(id="panel"):
            with Vertical(id="panel-left"):
                yield Static("", id="panel-info", classes="box")
                if self.service == "webdav":
                    yield Static("Files", classes="section-title")
                    yield DirectoryTree(self._root() or ".", id="panel-tree")
            with Vertical(id="panel-right"):
                yield Static("Recent requests", classes="section-title")
                yield DataTable(id="panel-requests", cursor_type="row")
                if self.service == "webdav":
                    yield Static("Inbox: recent submissions", classes="section-title")
                    yield DataTable(id="panel-inbox", cursor_type="row")
        yield Footer()

    def _root(self) -> str:
        root = self.ctx.webdav.root
        return root if root and Path(root).is_dir() else ""

    def on_mount(self) -> None:
        requests = self.query_one("#panel-requests", DataTable)
        requests.add_columns("time", "method", "path", "status", "bytes", "took")
        if self.service == "webdav":
            self.query_one("#panel-inbox", DataTable).add_columns("time", "message")
        self._add_logs([e for e in self.ctx.logs if self._mine(e)])

    def load_snapshot(self) -> None:
        self._show_status()

    def _mine(self, entry: LogEmitted) -> bool:
        return (
            entry.source in (self.service, "inbox")
            if self.service == "webdav"
            else (entry.source == self.service)
        )

    def _show_status(self) -> None:
        found = [s for s in self.ctx.api.services() if s.name == self.service]
        self.status = found[0] if found else None
        fmt = self.ctx.fmt
        info = Text()
        if self.status is None:
            info.append(f"{self.title}: not available in this engine")
        else:
            state = self.status.state.value
            info.append(f"{self.title}\n", style="bold")
            rows = [("state", state), ("url", fmt.address(self.status.address) or "–")]
            if self.service == "webdav":
                rows += [("user", self.ctx.webdav.user), ("root", fmt.path(self.ctx.webdav.root))]
            if self.status.last_error:
                rows.append(("error", self.status.last_error))
            info.append("\n".join(f"{k:<6} {v}" for k, v in rows))
            if state == "disabled":
                info.append(f"\n\ndisabled in the config (enable_{self.service} = true)")
        self.query_one("#panel-info", Static).update(info)
        self.refresh_bindings()

    def _add_logs(self, entries: list[LogEmitted]) -> None:
        fmt = self.ctx.fmt
        requests = self.query_one("#panel-requests", DataTable)
        for entry in entries:
            when = fmt.clock_time(entry.ts)
            if isinstance(entry, RequestServed):
                cells = (entry.method, Text(entry.path), str(entry.status), str(entry.bytes))
                requests.add_row(when, *cells, fmt.duration(entry.ms / 1000))
            elif entry.source == "inbox":
                inbox = self.query_one("#panel-inbox", DataTable)
                inbox.add_row(when, Text(fmt.path(entry.message)))
        for table in self.query(DataTable):
            while table.row_count > RECENT:
                table.remove_row(next(iter(table.rows)))
            if table.row_count:
                table.move_cursor(row=table.row_count - 1)

    def on_engine_batch(self, batch: EngineBatch) -> None:
        if self.service in batch.services:
            self._show_status()
        mine = [e for e in batch.logs if self._mine(e)]
        if mine:
            self._add_logs(mine)
        writes = [e for e in mine if isinstance(e, WebDAVRequest) and e.method in WRITES]
        if writes and self.query("#panel-tree"):
            self.throttled("tree", 2.0, self.query_one("#panel-tree", DirectoryTree).reload)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.status.state.value if self.status else "absent"
        if action == "start":
            return state in ("stopped", "failed")
        if action == "stop":
            return state == "running"
        if action == "open_browser":
            return state == "running"
        return True

    @work(exclusive=True, group="service", exit_on_error=False)
    async def action_start(self) -> None:
        try:
            await self.ctx.api.start_service(self.service)
        except Exception as exc:  # shown in place; the rest of the engine keeps working
            self.notify(f"{self.service}: {exc}", severity="error")
        self._show_status()

    @work(exclusive=True, group="service", exit_on_error=False)
    async def action_stop(self) -> None:
        if not await self.app.push_screen_wait(ConfirmScreen(f"Stop the {self.service} service?")):
            return
        try:
            await self.ctx.api.stop_service(self.service)
        except Exception as exc:
            self.notify(f"{self.service}: {exc}", severity="error")
        self._show_status()

    @work(thread=True, exit_on_error=False)
    def action_open_browser(self) -> None:
        # webbrowser may spawn a process and wait for it: a thread, not the loop.
        if self.status and self.status.address:
            webbrowser.open(self.status.address.split()[0])
