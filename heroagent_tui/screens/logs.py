"""Logs: engine, service and per-job lines with a level filter and follow mode, bounded."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Input, RichLog, Static

from core.events import LogEmitted
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.widgets.view_bar import ViewBar

LEVELS = ("debug", "info", "warning", "error")
MAX_LINES = 5_000


class LogsScreen(EngineScreen):
    """Shows the app's bounded log buffer and follows new lines."""

    TITLE = "Logs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "next_level", "Level", id="logs.level"),
        Binding("f", "toggle_follow", "Follow", id="logs.follow"),
        Binding("slash", "filter", "Filter", id="logs.filter"),
        Binding("escape", "clear_filter", "Clear filter", id="logs.clear"),
        Binding("c", "clear", "Clear", id="logs.wipe"),
    ]

    def __init__(self, *args: object, **kwargs: str) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.level = "info"
        self.follow = True
        self.text = ""
        # Lines come faster than they are drawn: the newest the view can hold wait here.
        self._unwritten: deque[LogEmitted] = deque(maxlen=MAX_LINES)

    def compose(self) -> ComposeResult:
        yield Header()
        yield ViewBar("logs")
        yield Input(placeholder="source or text, e.g. webdav, job 42", id="log-filter")
        yield RichLog(id="log", max_lines=MAX_LINES, wrap=False, auto_scroll=True)
        yield Static("", id="log-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log-filter", Input).display = False
        self.query_one(RichLog).focus()

    def load_snapshot(self) -> None:
        view = self.query_one(RichLog)
        view.clear()
        # ctx.logs holds the unwritten lines too.
        self._unwritten.clear()
        # Only the newest lines the view keeps: rendering the rest would be thrown away.
        newest = list(islice(filter(self._visible, reversed(self.ctx.logs)), MAX_LINES))
        self._write(reversed(newest))
        self._show_status()

    def _visible(self, entry: LogEmitted) -> bool:
        level = entry.level if entry.level in LEVELS else "info"
        if LEVELS.index(level) < LEVELS.index(self.level):
            return False
        text = self.text.lower()
        return not text or text in entry.source.lower() or text in entry.message.lower()

    def _line(self, entry: LogEmitted) -> Text:
        theme = self.app.current_theme
        colour = {"warning": theme.warning, "error": theme.error, "debug": theme.secondary}
        line = Text(f"{self.ctx.fmt.clock_time(entry.ts)} ")
        line.append(f"{entry.level:<7} ", style=Style(color=colour.get(entry.level)))
        line.append(f"{entry.source:<10} ", style=Style(color=theme.primary))
        line.append(self.ctx.fmt.path(entry.message))
        return line

    def _write(self, entries: Iterable[LogEmitted]) -> None:
        view = self.query_one(RichLog)
        for entry in entries:
            if self._visible(entry):
                view.write(self._line(entry), scroll_end=self.follow)

    def _show_status(self) -> None:
        follow = "following" if self.follow else "paused (f to follow)"
        shown = f"filter {self.text!r} · " if self.text else ""
        self.query_one("#log-status", Static).update(
            f"level ≥ {self.level} · {shown}{follow} · keeps the last {MAX_LINES:,} lines"
        )

    def on_engine_batch(self, batch: EngineBatch) -> None:
        # The app has already put the batch's lines into ctx.logs; show only the new ones.
        if batch.logs:
            self._unwritten.extend(batch.logs)
            self.draw_later("lines", self._write_unwritten)

    def _write_unwritten(self) -> None:
        lines = list(self._unwritten)
        self._unwritten.clear()
        self._write(lines)

    def action_next_level(self) -> None:
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]
        self.load_snapshot()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.query_one(RichLog).auto_scroll = self.follow
        self._show_status()

    def action_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#log-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.text = event.value.strip()
        self.query_one(RichLog).focus()
        self.load_snapshot()

    def action_clear_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.value = ""
        box.display = False
        self.text = ""
        self.query_one(RichLog).focus()
        self.load_snapshot()

    def action_clear(self) -> None:
        self.ctx.logs.clear()
        self.load_snapshot()
