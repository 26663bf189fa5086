"""`heroagent limits [set]`: queues' max_active and rate limits, over the request channel."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from heroagent_tui.commands.common import echo_json, fail
from heroagent_tui.commands.jobs import _run, queue_of
from heroagent_tui.commands.options import JSON_OPTION, listing_group

if TYPE_CHECKING:
    from heroagent import Client, LimitsView

app = listing_group(
    "Limits per queue over every worker: at most N active jobs, at most N starts a period."
)


@app.callback()
def list_limits(
    ctx: typer.Context,
    as_json: bool = JSON_OPTION,
) -> None:
    """List the queues that have limits, their active jobs and what holds them now."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    views = _run(ctx, lambda client: client.limits())
    if as_json:
        echo_json(views)
        return
    table = Table(title="queue limits", title_justify="left")
    for column in ("queue", "max_active", "rate", "active", "held"):
        table.add_column(column, justify="right" if column == "active" else "left")
    for v in views:
        table.add_row(v.name, str(v.max_active or "-"), v.rate or "-", str(v.active), v.held)
    Console(file=sys.stdout).print(table)


def _max_active(text: str) -> int:
    if text.strip().lower() in ("none", "0"):
        return 0
    try:
        value = int(text)
    except ValueError:
        fail(f"--max-active: {text!r} is not a whole number (or none)")
    if value < 0:
        fail(f"--max-active: {text!r} must not be negative")
    return value


@app.command("set")
def set_limits(
    ctx: typer.Context,
    queue: str = typer.Argument(..., help="CIRCLE/TOPIC, or TOPIC."),
    max_active: str | None = typer.Option(
        None, "--max-active", help="At most N of its jobs active at once; none lifts it."
    ),
    rate: str | None = typer.Option(
        None, "--rate", help="At most N starts per period: 20/s, 100/m, 5/10s; none lifts it."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set a queue's limits for every worker at once; a limit not given stays as it is."""
    circle, topic = queue_of(queue)

    def work(client: Client) -> LimitsView:
        now = next((v for v in client.limits() if v.name == f"{circle}/{topic}"), None)
        limit = (
            _max_active(max_active) if max_active is not None else (now.max_active if now else 0)
        )
        if rate is None:
            pace = now.rate if now else ""
        else:
            pace = "" if rate.strip().lower() == "none" else rate
        return client.set_limits(circle, topic, max_active=limit, rate=pace)

    view = _run(ctx, work)
    if as_json:
        echo_json(view)
        return
    parts = [f"max_active {view.max_active}" if view.max_active else "", view.rate]
    typer.echo(f"{view.name}: {', '.join(p for p in parts if p) or 'no limits'}")
