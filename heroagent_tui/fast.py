"""A plain `heroagent submit` or `worker` without typer: the command line read by typer's rules.

Scripts run `heroagent submit` in loops, so its start counts. typer 0.29 costs more
than the whole command may take: importing it, and the pydantic validator it builds for
each option it parses, is about 16 times a bare interpreter's start (docs/client.md has
the figures). So this module reads the command lines it is sure of, the global options
and submit's own with values it can convert, and runs `submit_jobs` with the parameters
the typer command would pass. Anything else (`--help`, an unknown option, a value
typer would refuse, another command) is left to the typer app, so its help and its
error messages stay the only ones. A plain `heroagent worker` (the root's options, then
`worker`) starts the same way: its start-up is part of every drain it joins.
tests/test_cli_fast.py checks that both read every command line alike and that each
option of the typer command is here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from heroagent_tui.commands.common import CliState


class Opt(NamedTuple):
    """One option: its parameter name, its flags, how its value converts, its default."""

    name: str
    flags: tuple[str, ...]
    kind: str  # flag, str, int, float, path, file (a path that is not a directory)
    default: Any = None
    low: int | None = None
    high: int | None = None


# The typer root's options (heroagent_tui/cli_app.py), also taken after `submit`.
GLOBAL = (
    Opt("config_file", ("--config", "-c"), "file"),
    Opt("data_dir", ("--data-dir",), "path"),
    Opt("host", ("--host",), "str"),
    Opt("redis_port", ("--redis-port",), "int"),
    Opt("redis_url", ("--redis-url",), "str"),
    Opt("webdav_port", ("--webdav-port",), "int"),
    Opt("ui_port", ("--ui-port",), "int"),
    Opt("log_level", ("--log-level",), "str"),
)
# `submit`'s own options (heroagent_tui/commands/jobs.py), in its order.
SUBMIT = (
    Opt("each_line", ("--each-line",), "flag", False),
    Opt("topic", ("--topic", "-t"), "str", "default"),
    Opt("circle", ("--circle",), "str", "default"),
    Opt("params_type", ("--type",), "str", "heroscript"),
    Opt("timeout", ("--timeout",), "float", 60.0),
    Opt("log", ("--log",), "flag", False),
    Opt("delay", ("--delay",), "str"),
    Opt("at", ("--at",), "str"),
    Opt("retries", ("--retries",), "int", None, 0),
    Opt("backoff", ("--backoff",), "str"),
    Opt("backoff_base", ("--backoff-base",), "str"),
    Opt("backoff_max", ("--backoff-max",), "str"),
    Opt("retry_on", ("--retry-on",), "str"),
    Opt("priority", ("--priority", "-p"), "int", None, 0, 9),
    Opt("unique_key", ("--unique-key",), "str", ""),
    Opt("unique_for", ("--unique-for",), "str"),
    Opt("after", ("--after",), "str"),
    Opt("on_parent_error", ("--on-parent-error",), "str", "fail"),
    Opt("graph", ("--graph",), "str"),
    Opt("wait", ("--wait",), "flag", False),
    Opt("as_json", ("--json",), "flag", False),
)
_GLOBAL_FLAGS = {flag: opt for opt in GLOBAL for flag in opt.flags}
_SUBMIT_FLAGS = {flag: opt for opt in (*SUBMIT, *GLOBAL) for flag in opt.flags}


class _NotSure(Exception):
    """This command line is the typer app's to read."""


def _convert(opt: Opt, text: str) -> Any:
    if opt.kind == "str":
        return text
    if opt.kind in ("path", "file"):
        if not text or (opt.kind == "file" and Path(text).is_dir()):
            raise _NotSure
        return Path(text)
    # Plain numbers only ("7", "-2", "0.5"); typer reads any other spelling.
    digits = text.removeprefix("-")
    if opt.kind == "float":
        digits = digits.replace(".", "", 1)
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise _NotSure
    if opt.kind == "float":
        return float(text)
    value = int(text)
    if (opt.low is not None and value < opt.low) or (opt.high is not None and value > opt.high):
        raise _NotSure
    return value


def _take(flags: dict[str, Opt], argv: list[str], at: int) -> tuple[Opt, Any, int]:
    """The option at `argv[at]`, its value, and where the next word is."""
    word = argv[at]
    flag, value = word, None
    if word.startswith("--"):
        flag, eq, attached = word.partition("=")
        value = attached if eq else None
    elif len(word) > 2 and word[:2] in flags:
        flag, value = word[:2], word[2:]  # -tdemo, as click reads it
    opt = flags.get(flag)
    if opt is None:
        raise _NotSure
    if opt.kind == "flag":
        if value is not None:
            raise _NotSure
        return opt, True, at + 1
    if value is None:
        if at + 1 >= len(argv) or (argv[at + 1].startswith("-") and argv[at + 1] != "-"):
            raise _NotSure  # click would take it as the value; rare enough to leave to it
        value, at = argv[at + 1], at + 1
    return opt, _convert(opt, value), at + 1


def parse_submit(argv: list[str]) -> tuple[CliState, dict[str, Any]] | None:
    """The CliState and `submit_jobs` parameters of `heroagent ARGV`; None if not sure."""
    try:
        return _parse(argv)
    except _NotSure:
        return None


def _root(argv: list[str], command: str) -> tuple[CliState, int]:
    """The CliState of the root's options before `command`, and where `command` is."""
    from heroagent_tui.commands.common import root_state

    root: dict[str, Any] = {}
    at = 0
    # The root's options come before the command (a group stops at its first argument).
    while at < len(argv) and argv[at] != command:
        if not argv[at].startswith("-"):
            raise _NotSure  # another command
        opt, value, at = _take(_GLOBAL_FLAGS, argv, at)
        root[opt.name] = value
    if at == len(argv):
        raise _NotSure  # the terminal app, or --serve
    config_file = root.pop("config_file", None)
    return root_state(config_file, root), at


def _parse(argv: list[str]) -> tuple[CliState, dict[str, Any]]:
    state, at = _root(argv, "submit")
    params: dict[str, Any] = {opt.name: opt.default for opt in SUBMIT}
    files: list[str] = []
    late: list[tuple[str, Any]] = []
    at += 1
    while at < len(argv):
        word = argv[at]
        if word == "--":
            files.extend(argv[at + 1 :])
            break
        if word == "-" or not word.startswith("-"):
            files.append(word)
            at += 1
            continue
        opt, value, at = _take(_SUBMIT_FLAGS, argv, at)
        if opt in GLOBAL:
            late.append((opt.name, value))  # after the command: wins over the root's
        else:
            params[opt.name] = value
    for name, value in late:
        state.set_option(name, value)
    params["files"] = files
    return state, params


def run_submit(argv: list[str]) -> bool:
    """Run `heroagent ARGV` if it is a submit this module reads; False when it is not."""
    parsed = parse_submit(argv)
    if parsed is None:
        return False
    state, params = parsed
    from heroagent_tui.commands.submit import submit_jobs

    try:
        submit_jobs(state, **params)
    except KeyboardInterrupt:
        print("Aborted!", file=sys.stderr)  # as click says it
        raise SystemExit(1) from None
    except BrokenPipeError:
        # The reader went away (`| head`): exit 1 quietly, as click does, with no second
        # error when the interpreter flushes stdout on its way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    return True


def parse_worker(argv: list[str]) -> CliState | None:
    """The CliState of `heroagent ARGV` if it is a plain `worker`; None if not sure.

    A worker's start-up is part of every drain it joins, and typer's is most of it once
    the engine stays out. Only the root's options, then `worker` as the last word.
    """
    try:
        state, at = _root(argv, "worker")
    except _NotSure:
        return None
    return state if at == len(argv) - 1 else None
