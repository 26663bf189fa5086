"""A form that adds a run-time schedule; the engine checks it, and its refusal stays on screen."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Footer, Input, Label, Select, Static

from core.api import HighlightSpan, ScheduleOptions, ScheduleView
from heroagent_tui.context import AppContext
from heroagent_tui.widgets.heroscript_area import HeroScriptArea

WHEN_KINDS = ("every", "cron")
MISSED = ("latest", "all", "skip")
PARAMS = "!!core.echo message:'tick'\n"


def _field(label: str, widget: Widget, *classes: str) -> Vertical:
    """A label over its field: a placeholder would vanish once the field has a value."""
    return Vertical(
        Label(label, classes="field-label"), widget, classes=" ".join(("field", *classes))
    )


def _choice(widget_id: str, values: tuple[str, ...]) -> Select[str]:
    """A pick of `values`, the first one chosen."""
    return Select([(v, v) for v in values], value=values[0], allow_blank=False, id=widget_id)


class ScheduleForm(ModalScreen[ScheduleView | None]):
    """ctrl+s adds the schedule and closes; escape closes without adding."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Add", id="schedule_form.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="schedule_form.cancel"),
    ]

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx

    def compose(self) -> ComposeResult:
        with Vertical(id="schedule-form"):
            yield Static("Add a schedule", classes="section-title")
            with Horizontal(classes="form-row"):
                yield _field("name", Input(placeholder="nightly-backup", id="schedule-name"))
                yield _field("fires", _choice("schedule-kind", WHEN_KINDS), "-narrow")
                yield _field(
                    "every / cron", Input(placeholder="5m  or  0 2 * * *", id="schedule-when")
                )
            with Horizontal(classes="form-row"):
                yield _field("circle", Input("default", id="schedule-circle"))
                yield _field("topic", Input(placeholder="topic", id="schedule-topic"))
                yield _field("tz", Input("UTC", id="schedule-tz"))
                yield _field("missed", _choice("schedule-missed", MISSED), "-narrow")
            yield Label("params (HeroScript)", classes="field-label")
            yield HeroScriptArea(PARAMS, highlighter=self._highlight, id="schedule-params")
            yield Static("", id="schedule-errors")
            yield Static("ctrl+s = add   esc = cancel", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#schedule-name", Input).focus()

    def _highlight(self, text: str) -> list[HighlightSpan]:
        return self.ctx.api.highlight(text, "heroscript")

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def options(self) -> ScheduleOptions:
        """What the fields say, as `add_schedule`'s keyword arguments."""
        options = ScheduleOptions(
            topic=self._value("schedule-topic"),
            circle=self._value("schedule-circle") or "default",
            tz=self._value("schedule-tz") or "UTC",
            missed=str(self.query_one("#schedule-missed", Select).value),
        )
        when = self._value("schedule-when")
        if self.query_one("#schedule-kind", Select).value == "cron":
            options["cron"] = when
        else:
            options["every"] = when
        return options

    @work(exclusive=True, group="save", exit_on_error=False)
    async def action_save(self) -> None:
        errors = self.query_one("#schedule-errors", Static)
        params = self.query_one(HeroScriptArea).text
        try:
            added = await self.ctx.api.add_schedule(
                self._value("schedule-name"), params, **self.options()
            )
        except Exception as exc:  # the engine's refusal says what is wrong, and where
            errors.update(str(exc))
            errors.set_class(True, "-invalid")
            self.notify(str(exc), severity="error", title="schedule not added")
            return
        self.notify(f"schedule {added.name} added")
        self.dismiss(added)

    def action_cancel(self) -> None:
        self.dismiss(None)
