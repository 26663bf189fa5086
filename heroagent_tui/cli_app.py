"""The `heroagent` typer app: the TUI by default, `--serve` headless, and sub-commands.

`heroagent_tui.cli.main` runs a plain `heroagent submit` without it (heroagent_tui/fast.py).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

from core import __version__
from core.config import ENV_CONFIG_FILE
from heroagent_tui.commands import config as config_commands
from heroagent_tui.commands import jobs as jobs_commands
from heroagent_tui.commands import limits as limits_commands
from heroagent_tui.commands import rhai as rhai_commands
from heroagent_tui.commands import schedules as schedule_commands
from heroagent_tui.commands import webdav as webdav_commands
from heroagent_tui.commands.common import GLOBAL_OPTIONS, root_state, state_of
from heroagent_tui.commands.heroscript import actors_command
from heroagent_tui.commands.heroscript import app as heroscript_app
from heroagent_tui.commands.ourdb import app as ourdb_app
from heroagent_tui.commands.redis import redis_cli


class GlobalOptionsGroup(TyperGroup):
    """The root command; its global options are accepted after any sub-command too.

    Users of `git -C`, `docker --host` and `kubectl -n` put them on either side. Each
    sub-command gets copies of the root's own options (one definition, listed in its
    `--help`) that write into the CliState when parsed; the root's values are in it
    already, so a value after the sub-command wins.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        shared = [p for p in self.params if isinstance(p, TyperOption) and p.name in GLOBAL_OPTIONS]
        for command in self.commands.values():
            _add_global_options(command, shared)


def _add_global_options(command: Any, shared: list[TyperOption]) -> None:
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _add_global_options(sub, shared)
        if not command.invoke_without_command:
            return
        # A group that acts itself (`heroagent jobs`, `heroagent dead`) takes them too.
    for option in shared:
        late = copy.copy(option)
        late.expose_value = False  # the command's function never sees it: the CliState does
        late.callback = _take_global_option
        late.rich_help_panel = "Global options"
        command.params.append(late)


def _take_global_option(ctx: Any, param: Any, value: Any) -> Any:
    # Typed loosely: the context and parameter classes are those of typer's own click copy.
    if param.name is not None:
        state_of(ctx).set_option(param.name, value)
    return value


app = typer.Typer(
    name="heroagent",
    cls=GlobalOptionsGroup,
    help="HeroAgent: a job system you watch and drive from the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(config_commands.app, name="config")
app.add_typer(ourdb_app, name="ourdb")
app.add_typer(heroscript_app, name="heroscript")
app.add_typer(rhai_commands.app, name="rhai")
app.command("actors")(actors_command)
app.add_typer(webdav_commands.app, name="webdav")
app.add_typer(schedule_commands.app, name="schedule")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"heroagent {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    config_file: Path | None = typer.Option(
        None, "--config", "-c", help=f"Config file (TOML). Also ${ENV_CONFIG_FILE}.", dir_okay=False
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where the engine keeps its data."
    ),
    host: str | None = typer.Option(None, "--host", help="Address every server binds."),
    redis_port: int | None = typer.Option(
        None, "--redis-port", help="TCP port of the managed server."
    ),
    redis_url: str | None = typer.Option(
        None, "--redis-url", help="Use this Redis/Valkey instead of starting one."
    ),
    webdav_port: int | None = typer.Option(
        None, "--webdav-port", help="TCP port of the WebDAV server."
    ),
    ui_port: int | None = typer.Option(
        None, "--ui-port", help="TCP port of the HTTP UI and JSON API."
    ),
    log_level: str | None = typer.Option(None, "--log-level", help="debug, info, warning, error."),
    serve: bool = typer.Option(False, "--serve", help="Run the engine headless (no terminal app)."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Start the terminal app (the default), or the engine alone with --serve."""
    options = {
        "data_dir": data_dir,
        "host": host,
        "redis_port": redis_port,
        "redis_url": redis_url,
        "webdav_port": webdav_port,
        "ui_port": ui_port,
        "log_level": log_level,
    }
    ctx.obj = state = root_state(config_file, options)
    if ctx.invoked_subcommand is not None:
        return
    loaded = state.load()
    if serve:
        from core.serve import run

        raise typer.Exit(run(loaded.config))
    from heroagent_tui.launch import run_tui

    raise typer.Exit(run_tui(loaded.config))


app.command("submit")(jobs_commands.submit)
app.command("job")(jobs_commands.show_job)
app.add_typer(jobs_commands.jobs_app, name="jobs")
app.command("cancel")(jobs_commands.cancel_job)
app.command("requeue")(jobs_commands.requeue_job)
app.command("pause")(jobs_commands.pause_queue)
app.command("resume")(jobs_commands.resume_queue)
app.add_typer(jobs_commands.dead_app, name="dead")
app.add_typer(limits_commands.app, name="limits")


app.command(
    "redis-cli",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)(redis_cli)


@app.command("worker")
def worker(ctx: typer.Context) -> None:
    """Run only the watchdog: against --redis-url, or the engine of --data-dir on this machine."""
    from core.worker import run

    raise typer.Exit(run(state_of(ctx).load().config))
