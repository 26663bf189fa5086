"""`heroagent webdav hash-password`: makes the hash a `webdav.users` entry holds."""

from __future__ import annotations

import sys

import typer

from heroagent_tui.commands.common import fail

app = typer.Typer(help="WebDAV helpers.", no_args_is_help=True)


@app.command("hash-password")
def hash_password_command(
    from_stdin: bool = typer.Option(
        False, "--stdin", help="Read the password from the first line of stdin (for scripts)."
    ),
) -> None:
    """Print a salted scrypt hash of a password, to paste into `[webdav.users]`."""
    # Imported here: the rest of the command line should not pay for hashlib's scrypt setup.
    from core.webdav.passwords import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        # Prompts on stderr, so stdout holds only the hash: `HASH=$(heroagent webdav ...)`.
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        fail("the password is empty")
    typer.echo(hash_password(password))
