"""Command palette provider: namespaced commands (`view: logs`, `jobs: open 42`, …)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from heroagent_tui.app import HeroAgentApp


class HeroAgentCommands(Provider):
    """Every command the app offers, each with a `namespace: verb` name."""

    @property
    def hero(self) -> HeroAgentApp:
        # Only HeroAgentApp installs this provider (its COMMANDS); importing the app here
        # would pull the whole engine into the palette's imports.
        return cast("HeroAgentApp", self.app)

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app = self.hero
        commands: list[tuple[str, Callable[[], object], str]] = []
        for mode, (title, _key) in app.VIEWS.items():
            commands.append((f"view: {mode}", partial(app.action_view, mode), f"Show {title}"))
        for status in ("new", "scheduled", "active", "done", "error"):
            commands.append(
                (
                    f"jobs: {status}",
                    partial(app.show_jobs, f"status:{status}"),
                    f"Jobs with status {status}",
                )
            )
        commands.append(("jobs: submit", partial(app.action_view, "submit"), "Write a job"))
        for name in sorted(app.available_themes):
            commands.append((f"theme: {name}", partial(app.set_theme, name), "Switch theme"))
        for service in app.ctx.api.services():
            for verb in ("start", "stop"):
                commands.append(
                    (
                        f"service: {verb} {service.name}",
                        partial(app.service_action, verb, service.name),
                        f"{verb.title()} the {service.name} service ({service.state.value})",
                    )
                )
        commands.append(("app: quit", app.action_quit, "Stop the engine and quit"))
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        number = re.search(r"\d+", query)
        if number:
            job_id = int(number.group())
            name = f"jobs: open {job_id}"
            yield Hit(
                100.0, matcher.highlight(name), partial(self.hero.open_job, job_id), help="Open job"
            )
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
