"""Typer pieces the sub-commands share: the `--json` option and listing groups.

Apart from commands/common.py, which `heroagent submit`'s typer-free path loads.
"""

from __future__ import annotations

import typer

# `--json` of the commands that print engine views.
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output.")


def listing_group(help_text: str) -> typer.Typer:
    """A command group that lists when run alone (`heroagent jobs`) and has sub-commands too.

    Its callback runs before a sub-command as well: it returns at once when
    `ctx.invoked_subcommand` is set.
    """
    return typer.Typer(help=help_text, invoke_without_command=True, no_args_is_help=False)
