"""Submit: a HeroScript editor with live validation, queue fields, templates, ctrl+s."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Input, Label, Select, Static, TextArea

from core.api import HighlightSpan, Problem
from heroagent_tui.messages import JobOpenRequested
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.screens.pickers import PathPrompt, TemplatePicker
from heroagent_tui.widgets.heroscript_area import HeroScriptArea
from heroagent_tui.widgets.view_bar import ViewBar

PARAMS_TYPES = ("heroscript", "rhaiscript", "openrpc", "ai")
EXAMPLE = "!!fake.return_success message: 'hello from the editor'\n"
# The params types the editor checks as you type, with the name it shows.
CHECKED = {"heroscript": "HeroScript", "rhaiscript": "Rhai"}


class SubmitScreen(EngineScreen):
    """Write a job, see its problems as you type, submit it and follow it."""

    TITLE = "Submit"
    # Focus is placed by hand: in the editor on arrival, nowhere when back from a job.
    AUTO_FOCUS = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Submit", id="submit.send"),
        Binding("ctrl+t", "template", "Template", id="submit.template"),
        Binding("ctrl+o", "load", "Load file", id="submit.load"),
        Binding("ctrl+e", "focus_editor", "Editor", id="submit.editor"),
        # The editor takes every printable key; escape leaves it so `1`…`9` and `q` work.
        Binding("escape", "leave_editor", "Leave editor", id="submit.leave"),
    ]

    _kind = "heroscript"

    def compose(self) -> ComposeResult:
        yield Header()
        yield ViewBar("submit")
        with Vertical(id="submit"):
            with Horizontal(id="submit-fields"):
                # A label over each field: a placeholder vanishes once the field has a value.
                with Vertical(classes="field"):
                    yield Label("circle", classes="field-label")
                    yield Input("default", placeholder="circle", id="circle")
                with Vertical(classes="field"):
                    yield Label("topic", classes="field-label")
                    yield Input("default", placeholder="topic", id="topic")
                with Vertical(classes="field -type"):
                    yield Label("type", classes="field-label")
                    yield Select(
                        [(t, t) for t in PARAMS_TYPES],
                        value="heroscript",
                        allow_blank=False,
                        id="params-type",
                    )
                with Vertical(classes="field"):
                    yield Label("timeout (s)", classes="field-label")
                    yield Input("60", placeholder="timeout s", id="timeout", type="number")
            yield HeroScriptArea(
                EXAMPLE, highlighter=self._highlight, id="editor", show_line_numbers=True
            )
            yield Static("", id="diagnostics")
        yield Footer()

    def on_mount(self) -> None:
        self._following = False
        self.query_one(HeroScriptArea).focus()
        self._validate()

    def on_screen_resume(self) -> None:
        # Back from following a submitted job: leave the editor so `1`…`9` switch views;
        # arriving with `5` puts the cursor in the editor, ready to type.
        if self._following:
            self._following = False
            self.set_focus(None)
        else:
            self.query_one(HeroScriptArea).focus()

    def fill(self, params: str = "", circle: str = "", topic: str = "") -> None:
        """Put text and a queue into the form (from `n` in Jobs, or `e` on a job)."""
        if params:
            self.query_one(HeroScriptArea).load_text(params)
        if circle:
            self.query_one("#circle", Input).value = circle
        if topic:
            self.query_one("#topic", Input).value = topic
        self.query_one(HeroScriptArea).focus()

    @on(TextArea.Changed, "#editor")
    def _edited(self) -> None:
        self._validate()

    @work(exclusive=True, group="validate", exit_on_error=False)
    async def _validate(self) -> None:
        """Show every problem with its line and column (the newest text wins)."""
        await self._check()

    def _highlight(self, text: str) -> list[HighlightSpan]:
        # The editor colours its text while it is built, before the type selector exists.
        return self.ctx.api.highlight(text, self._kind)

    @on(Select.Changed, "#params-type")
    def _type_changed(self, event: Select.Changed) -> None:
        self._kind = str(event.value)
        self.query_one(HeroScriptArea).rehighlight()
        self._validate()

    async def _check(self) -> list[Problem]:
        """Show every problem with its line and column, and return them."""
        box = self.query_one("#diagnostics", Static)
        kind = self._kind
        if kind not in CHECKED:
            box.update("")
            return []
        problems = await self.ctx.api.validate(self.query_one(HeroScriptArea).text, kind)
        box.set_class(bool(problems), "-invalid")
        if not problems:
            box.update(f"✓ valid {CHECKED[kind]}")
        else:
            box.update("\n".join(f"{d.line}:{d.col}  {d.message}" for d in problems[:6]))
        return problems

    def action_leave_editor(self) -> None:
        self.set_focus(None)

    def action_focus_editor(self) -> None:
        self.query_one(HeroScriptArea).focus()

    @work(exclusive=True, group="submit", exit_on_error=False)
    async def action_submit(self) -> None:
        editor = self.query_one(HeroScriptArea)
        problems = await self._check()
        if problems:
            first = problems[0]
            editor.move_cursor((max(0, first.line - 1), max(0, first.col - 1)))
            editor.focus()
            self.notify("fix the problems first", severity="error")
            return
        try:
            timeout = float(self.query_one("#timeout", Input).value or "60")
            job = await self.ctx.api.submit(
                editor.text,
                circle=self.query_one("#circle", Input).value.strip() or "default",
                topic=self.query_one("#topic", Input).value.strip() or "default",
                params_type=str(self.query_one("#params-type", Select).value),
                timeout=timeout,
            )
        except Exception as exc:  # JobError says what is wrong, with line and column
            self.notify(str(exc), severity="error", title="not submitted")
            return
        self.notify(f"job {job.job_id} submitted")
        self._following = True
        self.post_message(JobOpenRequested(job.job_id))

    @work(exit_on_error=False)
    async def action_template(self) -> None:
        actions = self.ctx.api.actions()
        if not actions:
            self.notify("no actions: the jobs service is not running", severity="warning")
            return
        template = await self.app.push_screen_wait(TemplatePicker(actions))
        if template:
            editor = self.query_one(HeroScriptArea)
            editor.insert(template.rstrip("\n") + "\n")
            editor.focus()

    @work(exit_on_error=False)
    async def action_load(self) -> None:
        path = await self.app.push_screen_wait(PathPrompt("Load HeroScript from a file"))
        if not path:
            return
        try:
            text = await asyncio.to_thread(_read, path)
        except OSError as exc:
            self.notify(f"cannot read {path}: {exc.strerror}", severity="error")
            return
        self.query_one(HeroScriptArea).load_text(text)
        self.query_one(HeroScriptArea).focus()


def _read(path: str) -> str:
    return Path(path).expanduser().read_text(encoding="utf-8")
