"""`heroagent schedule add|list|pause|resume|remove`: periodic jobs, over the request channel."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from heroagent_tui.commands.common import echo_json, read_input
from heroagent_tui.commands.jobs import _run
from heroagent_tui.commands.options import JSON_OPTION
from heroagent_tui.commands.submit import stamp

if TYPE_CHECKING:
    from heroagent import Client, ScheduleView

app = typer.Typer(
    help="Periodic jobs: add, list, pause, resume and remove schedules.",
    no_args_is_help=True,
    add_completion=False,
)


_NAME = typer.Argument(..., help="The schedule's name.")


def _print(views: list[ScheduleView]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="schedules", title_justify="left")
    for column in ("name", "when", "queue", "missed", "state", "last fire", "next fire", "fires"):
        table.add_column(column)
    for s in views:
        every = s.every if s.every.lower().startswith("every") else f"every {s.every}"
        when = every if s.every else f"{s.cron} ({s.tz})"
        state = "paused" if s.paused else "active"
        table.add_row(
            s.name,
            when,
            f"{s.circle}/{s.topic}",
            s.missed,
            f"{state}, {s.source}",
            stamp(s.last_fire),
            "" if s.paused else stamp(s.next_fire),
            str(s.fires),
        )
    Console(file=sys.stdout).print(table)


def _show(view: ScheduleView, as_json: bool, words: str) -> None:
    if as_json:
        echo_json(view)
    elif view.paused:  # a paused schedule has no next fire to show
        typer.echo(f"schedule {view.name} {words}")
    else:
        typer.echo(f"schedule {view.name} {words}; next fire {stamp(view.next_fire)}")


@app.command("list")
def list_schedules(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Every schedule of the engine, with its last and next fire."""
    views = _run(ctx, lambda client: client.schedules())
    if as_json:
        echo_json(views)
    else:
        _print(views)


@app.command("add")
def add_schedule(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The schedule's name (letters, digits, _ . -)."),
    file: str = typer.Argument("-", help="The params file, or - for stdin."),
    topic: str = typer.Option(..., "--topic", "-t", help="The queue's topic."),
    circle: str = typer.Option("default", "--circle", "-c", help="The queue's circle."),
    cron: str = typer.Option("", "--cron", help='A cron expression, "m h dom mon dow [sec]".'),
    every: str = typer.Option("", "--every", help="A fixed interval: 10s, 5m, 1h, 1d."),
    tz: str = typer.Option("UTC", "--tz", help="The time zone cron fields are read in."),
    missed: str = typer.Option("latest", "--missed", help="Missed fires: latest, all or skip."),
    params_type: str = typer.Option("heroscript", "--type", help="heroscript, rhaiscript, ..."),
    timeout: float = typer.Option(60.0, "--timeout", help="Each job's time limit in seconds."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add (or replace) a schedule: give exactly one of --cron or --every."""
    params = read_input(file)
    # The other options carry add_schedule's names, as the HTTP API's body does.
    options = {k: v for k, v in ctx.params.items() if k not in ("name", "file", "as_json")}
    view = _run(ctx, lambda client: client.add_schedule(name, params, **options))
    _show(view, as_json, "added")


def _state_command(
    change: Callable[[Client, str], ScheduleView], words: str, doc: str
) -> Callable[..., None]:
    """A command that pauses or resumes one schedule and shows it as it is then."""

    def command(ctx: typer.Context, name: str = _NAME, as_json: bool = JSON_OPTION) -> None:
        _show(_run(ctx, lambda client: change(client, name)), as_json, words)

    command.__doc__ = doc  # typer's help for the command
    return command


app.command("pause")(
    _state_command(
        lambda client, name: client.pause_schedule(name),
        "paused",
        "Stop a schedule firing until it is resumed.",
    )
)
app.command("resume")(
    _state_command(
        lambda client, name: client.resume_schedule(name),
        "resumed",
        "Fire a paused schedule again (fires that fell while paused are not made up for).",
    )
)


@app.command("remove")
def remove_schedule(ctx: typer.Context, name: str = _NAME) -> None:
    """Remove a schedule added at run time (config ones live in the config file)."""
    _run(ctx, lambda client: client.remove_schedule(name))
    typer.echo(f"schedule {name} removed")
