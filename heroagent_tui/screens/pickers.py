"""Small modal pickers: an action template from the registry, a file to load, queue limits."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from core.api import ActionView


class TemplatePicker(ModalScreen[str | None]):
    """Pick an action; the result is its skeleton with every parameter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="picker.close")
    ]

    def __init__(self, actions: list[ActionView]) -> None:
        super().__init__()
        self.actions = {a.method: a for a in actions}

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Static("Insert a template (enter), esc to close", classes="section-title")
            yield OptionList(
                *(Option(f"{a.method}  {a.doc}", id=a.method) for a in self.actions.values()),
                id="templates",
            )

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        action = self.actions.get(event.option.id or "")
        self.dismiss(action.template if action else None)


class PathPrompt(ModalScreen[str | None]):
    """Ask for a file path."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="prompt.close")
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.prompt_title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Static(self.prompt_title, classes="section-title")
            yield Input(placeholder="path/to/file.hero", id="path")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class LimitsPrompt(ModalScreen[tuple[str, str] | None]):
    """Ask for a queue's max_active and rate; enter in either field sets both."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="limits.close")
    ]

    def __init__(self, queue: str, max_active: int, rate: str) -> None:
        super().__init__()
        self.queue = queue
        self.max_active = max_active
        self.rate = rate

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Static(
                f"Limits of {self.queue} (empty: none), esc to close", classes="section-title"
            )
            yield Input(
                str(self.max_active or ""), placeholder="max active, e.g. 2", id="max-active"
            )
            yield Input(self.rate, placeholder="rate, e.g. 20/s or 100/m", id="rate")

    @on(Input.Submitted)
    def _submitted(self, _event: Input.Submitted) -> None:
        values = [
            self.query_one(f"#{name}", Input).value.strip() for name in ("max-active", "rate")
        ]
        self.dismiss((values[0], values[1]))
