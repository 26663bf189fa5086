"""One job: every field, params highlighted, result or error, its relatives, timeline, log."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Log, Static

from core.api import JobView
from heroagent_tui.bridge import EngineBatch
from heroagent_tui.context import AppContext
from heroagent_tui.messages import JobOpenRequested, SubmitRequested
from heroagent_tui.screens.base import EngineScreen
from heroagent_tui.screens.jobs import job_actions_cancel, job_actions_requeue
from heroagent_tui.widgets.heroscript_area import HeroScriptArea
from heroagent_tui.widgets.job_table import attempt_of, first_line, status_text

MAX_LOG_LINES = 2_000


def attempt_error(version: JobView) -> str:
    """The error of one version (an attempt's), with its kind; empty when it has none."""
    if not version.error:
        return ""
    line = first_line(version.error, 80)
    return f"{version.error_kind}: {line}" if version.error_kind else line


class JobDetailScreen(EngineScreen):
    """Pushed over Jobs (or Submit, to follow a new job); escape goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="job.back"),
        Binding("y", "copy_id", "Copy id", id="job.copy"),
        Binding("e", "edit", "Edit as new", id="job.edit"),
        Binding("R", "requeue", "Requeue", id="job.requeue"),
        Binding("C", "cancel", "Cancel", id="job.cancel"),
    ]

    def __init__(self, ctx: AppContext, job_id: int) -> None:
        super().__init__(ctx)
        self.job_id = job_id
        self.job: JobView | None = None
        self.sub_title = f"job {job_id}"

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="job-detail"):
            with Horizontal(id="job-top"):
                yield Static("loading…", id="job-fields", classes="box")
                with Vertical(id="job-params-box", classes="box"):
                    yield Static("Params", classes="section-title")
                    yield HeroScriptArea(
                        "", highlighter=self.ctx.api.highlight, read_only=True, id="job-params"
                    )
            yield Static("", id="job-outcome", classes="box")
            # Shown only for a job with parents or dependants; Enter opens the one chosen.
            yield Static("Parents and dependants", classes="section-title", id="job-rel-title")
            yield DataTable(id="job-relatives", cursor_type="row")
            yield Static("Timeline (OurDB versions)", classes="section-title")
            yield DataTable(id="job-timeline", cursor_type="row")
            yield Static("Log", classes="section-title")
            yield Log(id="job-log", max_lines=MAX_LOG_LINES)
        yield Footer()

    def on_mount(self) -> None:
        timeline = self.query_one("#job-timeline", DataTable)
        for name in ("#", "status", "time", "worker", "attempts", "error"):
            timeline.add_column(name, key=name)
        relatives = self.query_one("#job-relatives", DataTable)
        for name in ("relation", "id", "name", "status", "queue"):
            relatives.add_column(name, key=name)
        self._show_relatives([], [])

    def load_snapshot(self) -> None:
        self._load()

    @work(exclusive=True, group="job", exit_on_error=False)
    async def _load(self) -> None:
        try:
            job = await self.ctx.api.job(self.job_id)
            history = await self.ctx.api.history(self.job_id)
            parents, children = await self.ctx.api.relatives(self.job_id)
        except Exception as exc:
            self.query_one("#job-fields", Static).update(f"job {self.job_id}: {exc}")
            return
        first = self.job is None
        self.job = job
        self.refresh_bindings()
        self._show(job, history, first)
        self._show_relatives(parents, children)

    def _show_relatives(self, parents: list[JobView], children: list[JobView]) -> None:
        table = self.query_one("#job-relatives", DataTable)
        shown = bool(parents or children)
        table.display = shown
        self.query_one("#job-rel-title", Static).display = shown
        row = table.cursor_row
        table.clear()
        theme = self.app.current_theme
        for relation, views in (("parent", parents), ("dependant", children)):
            for view in views:
                table.add_row(
                    relation,
                    str(view.job_id),
                    view.name,
                    status_text(theme, view.status),
                    view.queue,
                    key=str(view.job_id),
                )
        if shown:
            table.move_cursor(row=min(row, table.row_count - 1))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "job-relatives" and event.row_key.value is not None:
            event.stop()
            self.post_message(JobOpenRequested(int(event.row_key.value)))

    def _show(self, job: JobView, history: list[JobView], first: bool) -> None:
        fmt = self.ctx.fmt
        self._show_fields(job)
        params = self.query_one("#job-params", HeroScriptArea)
        if params.text != job.params:
            params.load_text(job.params)
        outcome = Text()
        if job.error:
            # A scheduled job's error is its last attempt's: the next one may still succeed.
            label = "error" if job.ended else "last attempt's error"
            outcome.append(f"{label} ({job.error_kind})  " if job.error_kind else f"{label}  ")
            outcome.stylize("bold")
            outcome.append(fmt.path(job.error))
        elif job.ended:
            outcome.append("result  ", style="bold")
            outcome.append(fmt.path(job.result) or "(empty)")
        else:
            outcome.append("waiting for the result…")
        self.query_one("#job-outcome", Static).update(outcome)
        timeline = self.query_one("#job-timeline", DataTable)
        timeline.clear()
        for n, version in enumerate(history, 1):
            stamp = version.time_end or version.time_start or version.time_scheduled
            timeline.add_row(
                str(n),
                status_text(self.app.current_theme, version.status),
                fmt.timestamp(stamp),
                fmt.worker(version.worker),
                str(version.attempts),
                # Each failed attempt is a `scheduled` (retry) or `error` version with its error.
                Text(fmt.path(attempt_error(version))),
            )
        if first:
            self.query_one(Log).write_lines(job.log_lines)

    def _show_fields(self, job: JobView) -> None:
        fmt = self.ctx.fmt
        fields = Text()
        rows = [
            ("id", str(job.job_id)),
            ("queue", f"{job.circle}/{job.topic}"),
            ("type", job.params_type),
            ("timeout", f"{job.timeout:g} s"),
            ("scheduled", fmt.timestamp(job.time_scheduled)),
            ("started", fmt.timestamp(job.time_start)),
            ("ended", fmt.timestamp(job.time_end)),
            ("took", fmt.duration(job.duration)),
            ("attempts", attempt_of(job, job.attempts)),
            ("worker", fmt.worker(job.worker)),
        ]
        if job.status == "scheduled":
            rows.insert(5, ("next run", fmt.timestamp(job.run_at)))
        if job.progress is not None:
            bar = f"{fmt.progress(job.progress, 10)} {job.progress_message}"
            rows.append(("progress", bar.rstrip()))
        if job.wait_for:
            rows.append(("waits for", ", ".join(str(i) for i in job.wait_for)))
        if job.name:
            rows.append(("name", job.name))
        if job.unique_key:
            rows.append(("unique", job.unique_key))
        fields.append("status     ")
        fields.append_text(status_text(self.app.current_theme, job.status))
        for name, value in rows:
            fields.append(f"\n{name:<10} {value}")
        self.query_one("#job-fields", Static).update(fields)

    def on_engine_batch(self, batch: EngineBatch) -> None:
        progress = batch.progress.get(self.job_id)
        if progress is not None and self.job is not None and not self.job.ended:
            self.job = dataclasses.replace(
                self.job, progress=progress.fraction, progress_message=progress.message
            )
            self._show_fields(self.job)
        lines = [e.line for e in batch.job_logs if e.job_id == self.job_id]
        if lines:
            self.query_one(Log).write_lines(lines)
        if self.job_id in batch.jobs:
            self._load()

    def action_back(self) -> None:
        self.dismiss()

    def action_copy_id(self) -> None:
        self.app.copy_to_clipboard(str(self.job_id))
        self.notify(f"copied job id {self.job_id}")

    def action_edit(self) -> None:
        if self.job is not None:
            job = self.job
            self.post_message(SubmitRequested(job.params, job.circle, job.topic))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Requeue makes sense only for ended jobs, cancel only for live ones.
        if self.job is not None and action == "requeue":
            return self.job.ended
        if self.job is not None and action == "cancel":
            return not self.job.ended
        return True

    @work(exit_on_error=False)
    async def action_requeue(self) -> None:
        await job_actions_requeue(self, self.job_id)

    @work(exit_on_error=False)
    async def action_cancel(self) -> None:
        await job_actions_cancel(self, self.job_id)
