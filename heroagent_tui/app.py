"""The HeroAgent terminal app: modes, bindings, commands, themes; screens do the rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import HelpPanel

from core.api import EngineAPI
from core.engine import Engine
from heroagent_tui.bridge import EngineBatch, EngineBridge
from heroagent_tui.context import AppContext, PanelFacts
from heroagent_tui.format import DisplayFormat
from heroagent_tui.logbridge import BusLogHandler
from heroagent_tui.memory import freeze_startup
from heroagent_tui.messages import JobOpenRequested, JobsFilterRequested, SubmitRequested
from heroagent_tui.palette import HeroAgentCommands
from heroagent_tui.screens.confirm import ConfirmScreen
from heroagent_tui.screens.dashboard import DashboardScreen
from heroagent_tui.screens.dead import DeadScreen
from heroagent_tui.screens.job_detail import JobDetailScreen
from heroagent_tui.screens.jobs import JobsScreen
from heroagent_tui.screens.logs import LogsScreen
from heroagent_tui.screens.queues import QueuesScreen
from heroagent_tui.screens.scheduled import ScheduledScreen
from heroagent_tui.screens.service_panel import ServicePanelScreen
from heroagent_tui.screens.submit import SubmitScreen
from heroagent_tui.state import STATE_FILE, TUIState, load_state, save_state
from heroagent_tui.themes import DEFAULT_THEME, load_themes


class HeroAgentApp(App[int]):
    """Shows the engine API it is given; never starts or stops the engine."""

    TITLE = "HeroAgent"
    # Absolute, so subclasses elsewhere (tests, benchmarks) find it too.
    CSS_PATH = Path(__file__).parent / "styles" / "app.tcss"
    DEFAULT_MODE = "dashboard"
    COMMANDS = App.COMMANDS | {HeroAgentCommands}
    # mode → (title, number key)
    VIEWS: ClassVar[dict[str, tuple[str, str]]] = {
        "dashboard": ("Dashboard", "1"),
        "queues": ("Queues", "2"),
        "jobs": ("Jobs", "3"),
        "logs": ("Logs", "4"),
        "submit": ("Submit", "5"),
        "webdav": ("WebDAV", "6"),
        "http": ("HTTP", "7"),
        "scheduled": ("Scheduled", "8"),
        "dead": ("Dead", "9"),
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(key, f"view('{mode}')", title, show=False, id=f"view.{mode}")
            for mode, (title, key) in VIEWS.items()
        ),
        Binding("question_mark,f1", "toggle_help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        api: EngineAPI,
        *,
        fmt: DisplayFormat | None = None,
        webdav: PanelFacts | None = None,
        theme: str = "",
        keymap: dict[str, str] | None = None,
        state_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.events: Signal[EngineBatch] = Signal(self, "engine-batch")
        self.ctx = AppContext(api, self.events, fmt or DisplayFormat(), webdav or PanelFacts())
        self.state_path = state_path
        # Subscribe now, before the engine starts, so its first events are not missed.
        self._bridge = EngineBridge(api.subscribe())
        self.last_batch_at = 0.0
        self.call_on_unmount: Callable[[], None] = lambda: None
        """Monotonic time of the last event batch (tests wait for quiet with it)."""
        self._state = load_state(state_path) if state_path else TUIState()
        for loaded in load_themes():
            self.register_theme(loaded)
        wanted = self._state.theme or theme or DEFAULT_THEME
        self.theme = wanted if wanted in self.available_themes else DEFAULT_THEME
        self.set_keymap(keymap or {})
        for mode in self.VIEWS:
            self.add_mode(mode, self._screen_factory(mode))

    def _screen_factory(self, mode: str) -> Callable[[], Screen[None]]:
        ctx = self.ctx
        factories: dict[str, Callable[[], Screen[None]]] = {
            "dashboard": lambda: DashboardScreen(ctx),
            "queues": lambda: QueuesScreen(ctx),
            "jobs": lambda: JobsScreen(ctx),
            "logs": lambda: LogsScreen(ctx),
            "submit": lambda: SubmitScreen(ctx),
            "webdav": lambda: ServicePanelScreen(ctx, "webdav", "WebDAV"),
            "http": lambda: ServicePanelScreen(ctx, "ui", "HTTP UI"),
            "scheduled": lambda: ScheduledScreen(ctx),
            "dead": lambda: DeadScreen(ctx),
        }
        return factories[mode]

    def on_unmount(self) -> None:
        self.call_on_unmount()

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.run_worker(self._pump_events(), group="bridge", exit_on_error=False)

    def on_ready(self) -> None:
        # The first screen is up: what exists now lives as long as the app.
        freeze_startup()

    async def _pump_events(self) -> None:
        bridge = self._bridge
        try:
            while not bridge.subscription.closed:
                events = await bridge.batches()
                if events:
                    batch = bridge.collect(events)
                    self.last_batch_at = time.monotonic()
                    self.ctx.logs.extend(batch.logs)
                    self.events.publish(batch)
        finally:
            bridge.close()

    def _remember_theme(self, theme: object) -> None:
        if self.state_path is not None and self.theme != self._state.theme:
            self._state = replace(self._state, theme=self.theme)
            save_state(self.state_path, self._state)

    # -- navigation (screens ask through messages; the app owns modes) -------------------------

    def action_view(self, mode: str) -> None:
        """Show one of the views (`1`…`9`)."""
        self.switch_mode(mode)

    async def show_jobs(self, query: str) -> None:
        """The Jobs view, filtered by `query`."""
        await self.switch_mode("jobs")
        jobs = self.screen_stack[0]
        assert isinstance(jobs, JobsScreen)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        jobs.set_filter(query)

    def open_job(self, job_id: int) -> None:
        """Open a job's detail over the current view."""
        self.push_screen(JobDetailScreen(self.ctx, job_id))

    async def on_jobs_filter_requested(self, message: JobsFilterRequested) -> None:
        await self.show_jobs(message.query)

    def on_job_open_requested(self, message: JobOpenRequested) -> None:
        self.open_job(message.job_id)

    async def on_submit_requested(self, message: SubmitRequested) -> None:
        await self.switch_mode("submit")
        submit = self.screen_stack[0]
        assert isinstance(submit, SubmitScreen)
        submit.fill(message.params, message.circle, message.topic)

    def set_theme(self, name: str) -> None:
        """Switch theme (remembered for the next start)."""
        self.theme = name

    async def service_action(self, verb: str, name: str) -> None:
        """Start or stop a service (stopping asks first)."""
        if verb == "stop":
            self.push_screen(ConfirmScreen(f"Stop the {name} service?"), self._stop_confirmed(name))
            return
        self.run_worker(self._service_call(verb, name), exit_on_error=False)

    def _stop_confirmed(self, name: str) -> Callable[[bool | None], None]:
        def done(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._service_call("stop", name), exit_on_error=False)

        return done

    async def _service_call(self, verb: str, name: str) -> None:
        try:
            if verb == "start":
                await self.ctx.api.start_service(name)
            else:
                await self.ctx.api.stop_service(name)
        except Exception as exc:
            self.notify(f"{name}: {exc}", severity="error")

    def action_toggle_help(self) -> None:
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()


def create_app(
    engine: Engine,
    *,
    api: EngineAPI | None = None,
    fmt: DisplayFormat | None = None,
    log_level: str = "",
    app_class: type[HeroAgentApp] = HeroAgentApp,
) -> HeroAgentApp:
    """The one app factory shared by the CLI and the tests.

    With `log_level`, the engine's Python log records at that level and above also go
    to the Logs view (the handler leaves when the app unmounts). `api`: the engine's,
    for this loop when the engine runs on another (`core.engine_thread`).
    """
    config = engine.config
    users = sorted(config.webdav.users)
    webdav = PanelFacts(
        user=", ".join(users) if users else "anonymous (loopback only)",
        root=str(config.webdav_root),
    )
    app = app_class(
        api or engine.api,
        fmt=fmt,
        webdav=webdav,
        theme=config.tui.theme,
        keymap=dict(config.tui.keymap),
        state_path=config.data_path / STATE_FILE,
    )
    if log_level:
        handler = BusLogHandler(engine.bus, {f"core.{name}" for name in engine.services})
        handler.setLevel(log_level.upper())
        core_log = logging.getLogger("core")
        core_log.setLevel(log_level.upper())
        core_log.addHandler(handler)
        app.call_on_unmount = lambda: core_log.removeHandler(handler)
    return app
