"""`heroagent rhai check|run`: Rhai scripts without the queue or the TUI (imports stay lazy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heroagent_tui.commands.common import read_input, state_of

if TYPE_CHECKING:
    from core.rhai import RhaiError

app = typer.Typer(
    help="Check and run Rhai scripts with the embedded interpreter.",
    no_args_is_help=True,
    add_completion=False,
)


def _report(path: Path, text: str, exc: RhaiError, err: bool) -> None:
    from core.heroscript.errors import caret_view

    where = f"{path}:{exc.line}:{exc.col}" if exc.line else str(path)
    typer.echo(f"{where}: {exc.kind}: {exc.message}", err=err)
    lines = text.splitlines()
    if 0 < exc.line <= len(lines):
        typer.echo(caret_view(lines[exc.line - 1], exc.col), err=err)


@app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Rhai scripts.")],
) -> None:
    """Parse each file and list its syntax error; exit 1 when there is one."""
    from core.rhai import Engine, RhaiError

    engine = Engine()
    failed = False
    for path in files:
        text = read_input(path)
        try:
            engine.compile(text)
        except RhaiError as exc:
            failed = True
            _report(path, text, exc, err=False)
    if failed:
        raise typer.Exit(1)
    typer.echo(f"{len(files)} file(s) OK")


@app.command("run")
def run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The script to run.")],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Do not show print/debug lines.")
    ] = False,
    max_operations: Annotated[
        int | None, typer.Option("--max-operations", help="Override rhai.max_operations.")
    ] = None,
    files_root: Annotated[
        Path | None,
        typer.Option("--files-root", help="WebDAV root for file::* actions.", file_okay=False),
    ] = None,
    enable_shell: Annotated[
        bool, typer.Option("--enable-shell", help="Make shell::run available (off by default).")
    ] = False,
    module: Annotated[
        list[str] | None,
        typer.Option("--module", help="Load actors from a module (repeatable)."),
    ] = None,
) -> None:
    """Run a script locally with the actors, and print its value as JSON."""
    from dataclasses import replace

    from core.heroscript import ActionContext, ActorRegistry, ActorsSettings
    from core.rhai.host import limits_from_config, run_script

    text = read_input(file)
    limits = limits_from_config(state_of(ctx).load().config.rhai)
    if max_operations is not None:
        limits = replace(limits, max_operations=max_operations)
    settings = ActorsSettings(
        modules=tuple(module or ()), enable_shell=enable_shell, files_root=files_root
    )
    registry = ActorRegistry.from_settings(settings)
    for problem in registry.load_errors:
        typer.echo(f"warning: actor not loaded: {problem}", err=True)

    def log(line: str) -> None:
        if not quiet:
            typer.echo(f"  | {line}", err=True)

    import asyncio  # not at the top: the job commands load this module too

    outcome = asyncio.run(run_script(text, registry, ActionContext(log=log), limits))
    if outcome.error is not None:
        _report(file, text, outcome.error, err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(json.loads(outcome.result), indent=2, ensure_ascii=False))
