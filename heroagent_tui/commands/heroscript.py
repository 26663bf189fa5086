"""`heroagent heroscript check|fmt|run` and `heroagent actors`: HeroScript without the TUI."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heroagent_tui.commands.common import read_input

# The parser and the registry load in the commands that use them: `heroagent submit`
# and `--help` start without them.
if TYPE_CHECKING:
    from core.heroscript import ActorRegistry

app = typer.Typer(
    help="Check, format and run HeroScript files.",
    no_args_is_help=True,
    add_completion=False,
)

FilesRoot = Annotated[
    Path | None,
    typer.Option("--files-root", help="WebDAV root for file.* actions.", file_okay=False),
]
EnableShell = Annotated[
    bool, typer.Option("--enable-shell", help="Make shell.run available (off by default).")
]
Modules = Annotated[
    list[str] | None,
    typer.Option(
        "--module", help="Load actors from a module (repeatable; pkg.mod or pkg.mod:Class)."
    ),
]


def _registry(
    files_root: Path | None, enable_shell: bool, modules: list[str] | None
) -> ActorRegistry:
    from core.heroscript import ActorRegistry, ActorsSettings

    settings = ActorsSettings(
        modules=tuple(modules or ()), enable_shell=enable_shell, files_root=files_root
    )
    registry = ActorRegistry.from_settings(settings)
    for problem in registry.load_errors:
        typer.echo(f"warning: actor not loaded: {problem}", err=True)
    return registry


@app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="HeroScript or Markdown files.")],
    syntax_only: Annotated[
        bool, typer.Option("--syntax-only", help="Do not check actors and parameters.")
    ] = False,
    files_root: FilesRoot = None,
    enable_shell: EnableShell = False,
    module: Modules = None,
) -> None:
    """List every error of every file; exit 1 when there is one."""
    from core.heroscript import validate
    from core.heroscript.errors import caret_view

    registry = None if syntax_only else _registry(files_root, enable_shell, module)
    failed = False
    for path in files:
        text = read_input(path)
        lines = text.splitlines()
        for diag in validate(text, registry):
            failed = True
            typer.echo(f"{path}:{diag.line}:{diag.col}: {diag.message}")
            if 0 < diag.line <= len(lines):
                typer.echo(caret_view(lines[diag.line - 1], diag.col))
    if failed:
        raise typer.Exit(1)
    typer.echo(f"{len(files)} file(s) OK")


@app.command("fmt")
def fmt(
    file: Annotated[Path, typer.Argument(help="The file to format.")],
    write: Annotated[bool, typer.Option("--write", help="Rewrite the file in place.")] = False,
) -> None:
    """Print the file with its actions formatted (Markdown and prose are kept)."""
    from core.heroscript import HeroScriptError, format_text

    text = read_input(file)
    try:
        formatted = format_text(text)
    except HeroScriptError as exc:
        typer.echo(f"{file}:{exc}", err=True)
        raise typer.Exit(1) from None
    if write:
        if formatted != text:
            file.write_text(formatted, encoding="utf-8")
        return
    sys.stdout.write(formatted)


@app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="The script to run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    files_root: FilesRoot = None,
    enable_shell: EnableShell = False,
    module: Modules = None,
) -> None:
    """Run a script locally, without the queue, and print each action's result."""
    from core.heroscript import ActionContext, HeroScriptError, parse, run_playbook

    text = read_input(file)
    try:
        playbook = parse(text, source=str(file))
    except HeroScriptError as exc:
        typer.echo(f"{file}:{exc}", err=True)
        raise typer.Exit(1) from None
    registry = _registry(files_root, enable_shell, module)

    def log(line: str) -> None:
        if not as_json:
            typer.echo(f"  | {line}", err=True)

    import asyncio  # not at the top: the job commands load this module too

    result = asyncio.run(run_playbook(playbook, registry, ActionContext(log=log)))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for item in result.results:
            typer.echo(f"line {item.line}: {item.method} -> {json.dumps(item.result)}")
    if result.error is not None:
        if not as_json:
            typer.echo(f"{file}: error: {result.error}", err=True)
        raise typer.Exit(1)


def actors_command(
    files_root: FilesRoot = None,
    enable_shell: EnableShell = False,
    module: Modules = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the actors, their actions and parameters."""
    registry = _registry(files_root, enable_shell, module)
    if as_json:
        listing = {
            actor.name: {
                "source": actor.source,
                "actions": {
                    name: {
                        "summary": info.summary,
                        "params": [
                            {"name": p.name, "type": p.type_name, "required": p.required}
                            for p in info.params
                        ],
                    }
                    for name, info in sorted(actor.actions.items())
                },
            }
            for actor in registry.actors()
        }
        typer.echo(json.dumps(listing, indent=2))
        return
    for actor in registry.actors():
        typer.echo(f"{actor.name}  ({actor.source})")
        for name, info in sorted(actor.actions.items()):
            params = " ".join(
                f"{p.name}:{p.type_name}" + ("" if p.required else "?") for p in info.params
            )
            tail = f"  - {info.summary}" if info.summary else ""
            typer.echo(f"  !!{actor.name}.{name} {params}".rstrip() + tail)
