"""Queues: every circle/topic with its counts per status and its rate, live; and the schedules."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Header

from core.api import JobRefused, QueueView, ScheduleView
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.messages import JobsFilterRequested
from heroagent_tui.rates import EndRates
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.screens.confirm import ConfirmScreen
from heroagent_tui.screens.pickers import LimitsPrompt
from heroagent_tui.screens.schedule_form import ScheduleForm
from heroagent_tui.widgets.view_bar import ViewBar

COUNTS = ("waiting", "new", "active", "done", "error")
ENDED = ("done", "error")
RECONCILE_AFTER = 1.0
# The rate column is redrawn this often, however many events come.
RATE_REFRESH = 1.0
# Schedules send no events of their own: their list is read again this often.
SCHEDULES_REFRESH = 5.0
SCHEDULE_COLUMNS = ("schedule", "when", "queue", "next fire", "last fire", "fires", "state")


class ScheduleTable(DataTable[str]):
    """The schedules; focused (`s`), its keys act on the schedule under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "screen.toggle_schedule", "Pause/resume", id="queues.schedule_pause"),
        Binding("D", "screen.remove_schedule", "Remove", id="queues.schedule_remove"),
    ]


class QueuesScreen(EngineScreen):
    """A live table of queues; `enter` opens a queue's jobs."""

    TITLE = "Queues"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_queue", "Jobs", id="queues.open"),
        Binding("p", "toggle_pause", "Pause/resume", id="queues.pause"),
        Binding("l", "edit_limits", "Limits", id="queues.limits"),
        Binding("s", "switch_table", "Queues/schedules", id="queues.schedules"),
        Binding("a", "add_schedule", "Add schedule", id="queues.schedule_add"),
        Binding("j", "cursor_down", "Down", show=False, id="queues.down"),
        Binding("k", "cursor_up", "Up", show=False, id="queues.up"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield ViewBar("queues")
        yield DataTable(id="queues", cursor_type="row")
        # Shown once there is a schedule; its next fires count down every second.
        schedules = ScheduleTable(id="schedules", cursor_type="row")
        schedules.display = False
        yield schedules
        yield Footer()

    def on_mount(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}
        # Queues whose counts changed since they were last drawn.
        self._touched: set[str] = set()
        self._paused: dict[str, bool] = {}
        # Each queue's limits as last read: (max_active, rate, what holds it now).
        self._limits: dict[str, tuple[int, str, str]] = {}
        self._rates = EndRates(started=self.ctx.fmt.now())
        table = self.query_one(DataTable)
        for name in ("queue", *COUNTS, "rate/s", "limits", "state"):
            table.add_column(name, key=name)
        self.set_interval(RATE_REFRESH, lambda: self.draw_later("rates", self._show_rates))
        self._schedules: list[ScheduleView] = []
        schedules = self.query_one("#schedules", DataTable)
        for name in SCHEDULE_COLUMNS:
            schedules.add_column(name, key=name)
        self.set_interval(
            SCHEDULES_REFRESH, lambda: self.draw_later("schedules", self._load_schedules)
        )

    def load_snapshot(self) -> None:
        self._load()

    @work(exclusive=True, group="queues", exit_on_error=False)
    async def _load(self) -> None:
        try:
            queues = await self.ctx.api.queues()
        except Exception:  # the jobs service may be starting; events bring it later
            return
        for q in queues:
            self._set(q)
        self._show_rates()
        self._load_schedules()

    def _load_schedules(self) -> None:
        try:
            self._schedules = self.ctx.api.schedules()
        except Exception:  # the scheduler may be stopped or starting
            self._schedules = []
        table = self.query_one("#schedules", DataTable)
        table.display = bool(self._schedules)
        selected = self._selected_schedule()
        table.clear()
        for s in self._schedules:
            every = s.every if s.every.lower().startswith("every") else f"every {s.every}"
            when = every if s.every else f"{s.cron} {s.tz}"
            table.add_row(
                s.name,
                when,
                f"{s.circle}/{s.topic}",
                self._countdown(s),
                self.ctx.fmt.timestamp(s.last_fire) if s.last_fire else "",
                str(s.fires),
                "paused" if s.paused else "",
                key=s.name,
            )
        # Read again every few seconds: the cursor stays on the schedule it was on.
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        if not self._schedules and table.has_focus:
            self.query_one("#queues", DataTable).focus()

    def _countdown(self, s: ScheduleView) -> str:
        return "" if s.paused else self.ctx.fmt.countdown(s.next_fire)

    def _set(self, q: QueueView) -> None:
        counts = {name: int(getattr(q, name)) for name in COUNTS}
        self._counts[q.name] = counts
        self._paused[q.name] = q.paused
        self._limits[q.name] = (q.max_active, q.rate, q.held)
        self._render_row(q.name)

    def _render_row(self, name: str) -> None:
        table = self.query_one(DataTable)
        counts = self._counts[name]
        cells = [str(counts[c]) for c in COUNTS]
        max_active, rate, held = self._limits.get(name, (0, "", ""))
        limits = ", ".join(p for p in (f"max {max_active}" if max_active else "", rate) if p)
        # Why the queue is not moving: paused by hand, or held back by one of its limits.
        state = "paused" if self._paused.get(name) else f"held: {held}" if held else ""
        if name not in table.rows:
            table.add_row(name, *cells, self._rate(name), limits, state, key=name)
            return
        for column, value in zip(COUNTS, cells, strict=True):
            table.update_cell(name, column, value)
        table.update_cell(name, "limits", limits)
        table.update_cell(name, "state", state)

    def _rate(self, name: str) -> str:
        return self.ctx.fmt.metric(self._rates.rate(name, self.ctx.fmt.now()))

    def _show_rates(self) -> None:
        table = self.query_one(DataTable)
        for name in self._counts:
            if name in table.rows:
                table.update_cell(name, "rate/s", self._rate(name))
        schedules = self.query_one("#schedules", DataTable)
        for s in self._schedules:
            if s.name in schedules.rows:
                schedules.update_cell(s.name, "next fire", self._countdown(s))

    def on_engine_batch(self, batch: EngineBatch) -> None:
        if batch.purged:
            # Purged jobs leave their queue's ended counts; the snapshot says by how much.
            self.debounced("reconcile", RECONCILE_AFTER, self._reconcile)
        if not batch.jobs:
            return
        # Deltas keep the counts live; the history index is updated a little after the
        # events (group commit), so once a burst is over, one snapshot settles any drift.
        self.debounced("reconcile", RECONCILE_AFTER, self._reconcile)
        for event in batch.jobs.values():
            # The newest event of each job in the batch: an end is its last, so none is missed.
            if event.status in ENDED:
                self._rates.add(f"{event.circle}/{event.topic}", event.ts)
        for (circle, topic, status), delta in batch.queue_deltas.items():
            name = f"{circle}/{topic}"
            counts = self._counts.setdefault(name, dict.fromkeys(COUNTS, 0))
            counts[status] = max(0, counts.get(status, 0) + delta)
            if status == "new":
                counts["waiting"] = max(0, counts["waiting"] + delta)
            self._touched.add(name)
        self.draw_later("rows", self._draw_touched)

    def _reconcile(self) -> None:
        self.draw_later("reconcile", self._load, every=0.0)

    def _draw_touched(self) -> None:
        touched, self._touched = self._touched, set()
        for name in touched:
            self._render_row(name)

    def _selected(self) -> str | None:
        return _row_key(self.query_one("#queues", DataTable))

    def _selected_schedule(self) -> str | None:
        return _row_key(self.query_one("#schedules", DataTable))

    def action_open_queue(self) -> None:
        name = self._selected()
        if name:
            circle, topic = name.split("/", 1)
            self.post_message(JobsFilterRequested(f"circle:{circle} topic:{topic}"))

    @work(exit_on_error=False)
    async def action_toggle_pause(self) -> None:
        name = self._selected()
        if not name:
            return
        circle, topic = name.split("/", 1)
        if self._paused.get(name):
            await self.ctx.api.resume_queue(circle, topic)
        else:
            await self.ctx.api.pause_queue(circle, topic)
        self._paused[name] = not self._paused.get(name)
        self._render_row(name)

    @work(exit_on_error=False)
    async def action_edit_limits(self) -> None:
        name = self._selected()
        if not name:
            return
        max_active, rate, _ = self._limits.get(name, (0, "", ""))
        answer = await self.app.push_screen_wait(LimitsPrompt(name, max_active, rate))
        if answer is None:
            return
        circle, topic = name.split("/", 1)
        try:
            limit = int(answer[0] or 0)
            view = await self.ctx.api.set_queue_limits(
                circle, topic, max_active=limit, rate=answer[1]
            )
        except ValueError:
            self.notify(f"max active: {answer[0]!r} is not a whole number", severity="error")
            return
        except JobRefused as exc:
            self.notify(str(exc), severity="error")
            return
        self._limits[name] = (view.max_active, view.rate, view.held)
        self._render_row(name)

    def _focused_table(self) -> DataTable[str]:
        schedules = self.query_one("#schedules", DataTable)
        return schedules if schedules.has_focus else self.query_one("#queues", DataTable)

    def action_cursor_down(self) -> None:
        self._focused_table().action_cursor_down()

    def action_cursor_up(self) -> None:
        self._focused_table().action_cursor_up()

    def action_switch_table(self) -> None:
        schedules = self.query_one("#schedules", DataTable)
        if schedules.has_focus or not schedules.display:
            self.query_one("#queues", DataTable).focus()
            if not schedules.display:
                self.notify("no schedules yet: a adds one")
        else:
            schedules.focus()

    @work(exit_on_error=False)
    async def action_toggle_schedule(self) -> None:
        name = self._selected_schedule()
        found = [s for s in self._schedules if s.name == name]
        if not found:
            return
        api = self.ctx.api
        try:
            if found[0].paused:
                await api.resume_schedule(found[0].name)
            else:
                await api.pause_schedule(found[0].name)
        except Exception as exc:  # removed meanwhile, or the scheduler stopped
            self.notify(str(exc), severity="error")
        self._load_schedules()

    @work(exit_on_error=False)
    async def action_remove_schedule(self) -> None:
        name = self._selected_schedule()
        if name is None:
            return
        if not await self.app.push_screen_wait(ConfirmScreen(f"Remove schedule {name}?")):
            return
        try:
            await self.ctx.api.remove_schedule(name)
        except Exception as exc:  # one from the config: the engine says so
            self.notify(str(exc), severity="error", title="not removed")
        else:
            self.notify(f"schedule {name} removed")
        self._load_schedules()

    @work(exit_on_error=False)
    async def action_add_schedule(self) -> None:
        added = await self.app.push_screen_wait(ScheduleForm(self.ctx))
        if added is not None:
            self._load_schedules()
            schedules = self.query_one("#schedules", DataTable)
            if added.name in schedules.rows:
                schedules.move_cursor(row=schedules.get_row_index(added.name))
                schedules.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "queues":
            self.action_open_queue()


def _row_key(table: DataTable[str]) -> str | None:
    """The key of the row under the cursor."""
    if not table.row_count:
        return None
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
