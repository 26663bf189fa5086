"""The `heroagent` command line: the TUI by default, `--serve` headless, and sub-commands."""

from __future__ import annotations

import typer

from core import __version__
from heroagent_tui.commands.heroscript import actors_command
from heroagent_tui.commands.heroscript import app as heroscript_app

app = typer.Typer(
    name="heroagent",
    help="HeroAgent: a job system you watch and drive from the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(heroscript_app, name="heroscript")
app.command("actors")(actors_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"heroagent {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Start the terminal app (the default)."""
    if ctx.invoked_subcommand is not None:
        return


def main() -> None:
    """Console-script entry point."""
    app()
