"""`heroagent config show|init`: the effective config with its sources, and a starter file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from core.config import default_config_file, default_config_text, iter_effective
from heroagent_tui.commands.common import fail, state_of

app = typer.Typer(help="Show or create the config file.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    show_secrets: bool = typer.Option(
        False, "--show-secrets", help="Print passwords and tokens instead of ********."
    ),
) -> None:
    """Print the effective config and where each value came from (credentials masked)."""
    loaded = state_of(ctx).load()
    rows = list(iter_effective(loaded, reveal=show_secrets))
    if as_json:
        payload = {key: {"value": value, "source": source} for key, value, source in rows}
        typer.echo(json.dumps({"file": str(loaded.file) if loaded.file else None, "keys": payload}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"config file: {loaded.file or 'none (defaults)'}", title_justify="left")
    table.add_column("key")
    table.add_column("value")
    table.add_column("source")
    for key, value, source in rows:
        table.add_row(key, repr(value) if isinstance(value, str) else str(value), source)
    Console(file=sys.stdout).print(table)


@app.command("init")
def init(
    ctx: typer.Context,
    path: Path | None = typer.Argument(None, help="Where to write (default: the --config path)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented config file holding every key at its default."""
    target = path or state_of(ctx).config_file or default_config_file()
    if target.exists() and not force:
        fail(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(default_config_text(), encoding="utf-8")
    typer.echo(f"wrote {target}")
