"""Pilot tests of the key flows, against a real engine (real valkey-server, temp dirs)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx
from textual.widgets import DataTable, Input, Label, Static

from core.config import Config
from heroagent_tui.format import DisplayFormat
from heroagent_tui.screens.job_detail import JobDetailScreen
from heroagent_tui.screens.jobs import JobsScreen
from heroagent_tui.screens.pickers import LimitsPrompt
from heroagent_tui.screens.service_panel import ServicePanelScreen
from heroagent_tui.screens.submit import SubmitScreen
from heroagent_tui.state import STATE_FILE
from heroagent_tui.widgets.heroscript_area import HeroScriptArea
from heroagent_tui.widgets.job_table import JobTable
from tests.tui.conftest import open_detail, running_app, submit_from_editor, until


def _status(table: DataTable[object], job_id: int) -> str:
    return str(table.get_row(str(job_id))[1]) if str(job_id) in table.rows else ""


async def test_submit_from_the_editor_follow_it_and_see_it_done_in_jobs(
    engine_config: Config,
) -> None:
    async with running_app(engine_config) as (_engine, app, pilot):
        detail = await submit_from_editor(pilot, "!!fake.return_success message:hi")
        assert detail.job is not None
        assert "hi" in detail.job.result
        timeline = detail.query_one("#job-timeline", DataTable)
        await until(pilot, lambda: timeline.row_count >= 3, what="new, active, done versions")
        await pilot.press("escape", "3")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="Jobs")
        table = app.screen.query_one(JobTable)
        await until(pilot, lambda: _status(table, detail.job_id) == "done", what="done in Jobs")


async def test_submit_fields_have_labels_over_them(engine_config: Config) -> None:
    async with running_app(engine_config) as (_engine, app, pilot):
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen), what="Submit")
        await pilot.pause()
        fields = {"circle": "circle", "topic": "topic", "params-type": "type", "timeout": "timeout"}
        for field_id, word in fields.items():
            field = app.screen.query_one(f"#{field_id}")
            assert field.parent is not None
            label = field.parent.query_one(Label)
            assert word in str(label.render()), field_id
            # Visible, on the row above its field and starting at its left edge.
            assert label.region.height == 1, field_id
            assert label.region.width > 0, field_id
            assert label.region.bottom == field.region.y, field_id
            assert label.region.x == field.region.x, field_id
            assert not label.can_focus  # tab still goes field to field


async def test_live_validation_names_line_and_column(engine_config: Config) -> None:
    async with running_app(engine_config) as (_engine, app, pilot):
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        app.screen.query_one(HeroScriptArea).clear()
        await pilot.press(*"!!fake.no_such_action")
        box = app.screen.query_one("#diagnostics", Static)
        await until(pilot, lambda: "1:" in str(box.render()), what="a diagnostic at line 1")
        assert box.has_class("-invalid")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SubmitScreen)  # nothing was submitted


async def test_filter_then_open_a_job(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        api = engine.api
        ok = await api.submit("!!fake.return_success", topic="email")
        bad = await api.submit("!!fake.return_error message:boom", topic="email")
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        table = app.screen.query_one(JobTable)
        await until(pilot, lambda: _status(table, bad.job_id) == "error", what="error shown")
        await until(pilot, lambda: _status(table, ok.job_id) == "done", what="done shown")
        await pilot.press("slash", *"status:error", "enter")
        await until(pilot, lambda: table.row_count == 1 and str(bad.job_id) in table.rows)
        detail = await open_detail(pilot, bad.job_id)
        outcome = detail.query_one("#job-outcome", Static)
        await until(pilot, lambda: "boom" in str(outcome.render()), what="the error shown")
        await pilot.press("escape", "escape")
        await until(pilot, lambda: table.row_count == 2, what="filter cleared")


async def test_jobs_that_arrive_live_show_their_type(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="Jobs")
        status = app.screen.query_one("#jobs-status", Static)
        await until(pilot, lambda: "0 jobs shown" in str(status.render()), what="empty page")
        table = app.screen.query_one(JobTable)
        # Submitted once the table is shown: its row comes from events, not from a page.
        job = await engine.api.submit("!!fake.return_success", topic="live")
        await until(pilot, lambda: str(job.job_id) in table.rows, what="the live row")
        await until(
            pilot,
            lambda: str(table.get_cell(str(job.job_id), "type")) == "heroscript",
            what=f"the type in {table.get_row(str(job.job_id))}",
        )


async def test_queue_enter_opens_its_jobs(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        api = engine.api
        job = await api.submit("!!fake.return_success", topic="reports", circle="acme")
        await pilot.press("2")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: "acme/reports" in table.rows, what="the queue row")
        await until(
            pilot,
            lambda: table.get_row("acme/reports")[4] == "1",
            what=f"done count {table.get_row('acme/reports')}",
        )
        table.move_cursor(row=table.get_row_index("acme/reports"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        assert jobs.filter.circle == "acme"
        assert jobs.filter.topic == "reports"
        await until(pilot, lambda: str(job.job_id) in jobs.query_one(JobTable).rows)


async def test_queue_rate_counts_the_ends_of_the_last_seconds(engine_config: Config) -> None:
    # The screen's clock is the test's: frozen while the jobs run, then moved on by hand.
    start = time.time()
    now = [start]
    fmt = DisplayFormat(clock=lambda: now[0])
    async with running_app(engine_config, fmt=fmt) as (engine, app, pilot):
        await pilot.press("2")
        table = app.screen.query_one(DataTable)
        api = engine.api
        jobs = [await api.submit("!!fake.return_success", topic="drain") for _ in range(50)]
        row = "default/drain"

        def cell(column: str) -> str:
            return str(table.get_cell(row, column)) if row in table.rows else ""

        await until(pilot, lambda: cell("done") == "50", what=f"50 done: {cell('done')}")
        ends = [(await api.job(job.job_id)).time_end for job in jobs]
        # Their events come a little after their ends: leave a margin inside the window.
        assert max(ends) - min(ends) < 4.0, "the jobs' ends do not fit in one window"
        # Every end lies in the 5 s window that ends now (a whole window after the screen
        # opened, however long a loaded machine took to start the jobs): 50 ends / 5 s.
        now[0] = max(start + 5.0, max(ends) + 0.5)
        await until(pilot, lambda: cell("rate/s") == "10", what=f"10/s, not {cell('rate/s')}")
        # Once the window has passed the last end, an idle queue shows 0.
        now[0] = max(ends) + 5.5
        await until(pilot, lambda: cell("rate/s") == "0", what=f"0/s, not {cell('rate/s')}")


async def test_theme_from_the_palette_persists(engine_config: Config) -> None:
    async with running_app(engine_config) as (_engine, app, pilot):
        assert app.theme == "heroagent-dark"
        await pilot.press("ctrl+p")
        await pilot.press(*"theme: heroagent-light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: app.theme == "heroagent-light", what="light theme")
    state = engine_config.data_path / STATE_FILE
    assert json.loads(state.read_text())["theme"] == "heroagent-light"
    async with running_app(engine_config) as (_engine, app, pilot):
        assert app.theme == "heroagent-light"


async def test_stop_and_start_webdav_from_its_panel(engine_config: Config) -> None:
    async with running_app(engine_config, webdav=True) as (engine, app, pilot):
        await pilot.press("6")
        await until(pilot, lambda: isinstance(app.screen, ServicePanelScreen))
        service = engine.services["webdav"]
        await until(pilot, lambda: service.state.value == "running")
        await pilot.press("S")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: service.state.value == "stopped", what="webdav stopped")
        info = app.screen.query_one("#panel-info", Static)
        await until(pilot, lambda: "stopped" in str(info.render()), what="panel says stopped")
        await pilot.press("s")
        await until(pilot, lambda: service.state.value == "running", what="webdav running")


async def test_http_panel_shows_requests_and_stops_the_service(engine_config: Config) -> None:
    async with running_app(engine_config) as (engine, app, pilot):
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, ServicePanelScreen))
        service = engine.services["ui"]
        await until(pilot, lambda: service.state.value == "running")
        info = app.screen.query_one("#panel-info", Static)
        url = f"http://127.0.0.1:{engine_config.ui.port}"
        await until(pilot, lambda: url in str(info.render()), what="the panel shows the URL")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/healthz")).status_code == 200
        requests = app.screen.query_one("#panel-requests", DataTable)
        await until(
            pilot,
            lambda: any(
                "/healthz" in str(requests.get_row_at(i)[2]) for i in range(requests.row_count)
            ),
            what="the request in the panel",
        )
        await pilot.press("S")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: service.state.value == "stopped", what="ui stopped")
        await pilot.press("s")
        await until(pilot, lambda: service.state.value == "running", what="ui running")


async def test_http_panel_when_disabled(engine_config: Config) -> None:
    async with running_app(replace(engine_config, enable_ui=False)) as (_engine, app, pilot):
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, ServicePanelScreen))
        info = str(app.screen.query_one("#panel-info", Static).render())
        assert "disabled" in info
        await pilot.press("s")  # hidden by check_action: nothing happens, nothing breaks
        await pilot.pause()


async def test_help_and_quit(engine_config: Config) -> None:
    async with running_app(engine_config) as (_engine, app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: bool(app.screen.query("HelpPanel")), what="help shown")
        await pilot.press("question_mark")
        await until(pilot, lambda: not app.screen.query("HelpPanel"), what="help hidden")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="the app to exit")


async def test_keys_remapped_from_the_tui_config_section(engine_config: Config) -> None:
    engine_config.tui.keymap = {"app.help": "h", "view.logs": "l"}
    async with running_app(engine_config) as (_engine, app, pilot):
        await pilot.press("l")
        await until(pilot, lambda: type(app.screen).__name__ == "LogsScreen", what="Logs")
        await pilot.press("h")
        await until(pilot, lambda: bool(app.screen.query("HelpPanel")), what="help on h")


async def test_template_from_the_actor_registry(engine_config: Config) -> None:
    from heroagent_tui.screens.pickers import TemplatePicker

    async with running_app(engine_config) as (_engine, app, pilot):
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
        editor = app.screen.query_one(HeroScriptArea)
        editor.clear()
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, TemplatePicker), what="the picker")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SubmitScreen), what="back in Submit")
        assert editor.text.startswith("!!")


async def test_queues_show_the_schedules_with_a_countdown(engine_config: Config) -> None:
    now = [time.time()]
    fmt = DisplayFormat(clock=lambda: now[0])
    async with running_app(engine_config, fmt=fmt) as (engine, app, pilot):
        await pilot.press("2")
        table = app.screen.query_one("#schedules", DataTable)
        assert not table.display  # no schedule, no table
        added = await engine.api.add_schedule(
            "nightly", topic="backup", params="!!core.echo\n", cron="0 2 * * *"
        )
        await until(pilot, lambda: "nightly" in table.rows, seconds=10, what="the schedule row")
        assert table.display
        now[0] = added.next_fire - 65
        await until(
            pilot,
            lambda: str(table.get_cell("nightly", "next fire")) == "in 1m 05s",
            what=f"a countdown, not {table.get_cell('nightly', 'next fire')}",
        )
        assert str(table.get_cell("nightly", "when")) == "0 2 * * * UTC"


async def test_a_running_job_shows_its_progress_in_jobs_and_its_detail(
    engine_config: Config,
) -> None:
    config = replace(
        engine_config,
        actors=replace(engine_config.actors, modules=["tests.core.jobs.progress_actors"]),
    )
    async with running_app(config) as (engine, app, pilot):
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), what="Jobs")
        table = app.screen.query_one(JobTable)
        job = await engine.api.submit("!!progress.halfway", topic="long")

        def bar() -> str:
            key = str(job.job_id)
            return str(table.get_cell(key, "progress")) if key in table.rows else ""

        await until(pilot, lambda: bar().endswith(" 50%"), what=f"the bar, not {bar()!r}")
        assert bar() == "██░░░  50%"
        await pilot.press("enter")
        detail = await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen)
        assert isinstance(detail, JobDetailScreen)
        fields = detail.query_one("#job-fields", Static)
        await until(pilot, lambda: "halfway" in str(fields.render()), what="the progress line")
        assert "progress   █████░░░░░  50% halfway" in str(fields.render())
        await engine.api.cancel(job.job_id)
        await pilot.press("escape")
        await until(pilot, lambda: _status(table, job.job_id) == "error", what="cancelled")
        # The bar is for running jobs only.
        assert bar() == ""


async def test_queues_show_limits_why_a_queue_is_held_and_edit_them(
    engine_config: Config,
) -> None:
    async with running_app(engine_config, size=(140, 40)) as (engine, app, pilot):
        await engine.api.set_queue_limits("default", "capped", max_active=1)
        jobs = [
            await engine.api.submit("!!fake.sleep seconds:30\n", topic="capped") for _ in range(3)
        ]
        await pilot.press("2")
        table = app.screen.query_one("#queues", DataTable)

        def state() -> str:
            return str(table.get_cell("default/capped", "state"))

        # The table reloads on job events; the hold shows once one runs and two wait.
        await until(
            pilot,
            lambda: "default/capped" in table.rows and state() == "held: max_active 1",
            seconds=15,
            what="the queue held by max_active",
        )
        assert str(table.get_cell("default/capped", "limits")) == "max 1"
        table.move_cursor(row=table.get_row_index("default/capped"))
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LimitsPrompt), what="the limits prompt")
        app.screen.query_one("#max-active", Input).value = "2"
        app.screen.query_one("#rate", Input).value = "20/s"
        app.screen.query_one("#rate", Input).focus()
        await pilot.press("enter")
        await until(
            pilot,
            lambda: str(table.get_cell("default/capped", "limits")) == "max 2, 20/s",
            what="the new limits in the table",
        )
        (view,) = await engine.api.queue_limits()
        assert (view.max_active, view.rate) == (2, "20/s")
        for job in jobs:
            await engine.api.cancel(job.job_id)
