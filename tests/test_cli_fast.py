"""The fast paths of `heroagent submit` and `worker` read every command line as typer does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.core import Command
from typer.core import TyperArgument, TyperGroup, TyperOption

from heroagent_tui.cli import app
from heroagent_tui.commands.common import CliState
from heroagent_tui.fast import GLOBAL, SUBMIT, Opt, parse_submit, parse_worker

KINDS = {bool: "flag", str: "str", int: "int", float: "float", Path: "path"}


def _root() -> TyperGroup:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def _typer_reads(argv: list[str]) -> tuple[CliState, dict[str, Any]]:
    """The CliState and parameters the typer app would run `submit_jobs` with.

    The root's callback runs (it builds the CliState), then submit's options are parsed
    (the global ones after it write into the state); the command itself does not run.
    """
    group = _root()
    at = argv.index("submit")
    with group.make_context("heroagent", argv[: at + 1]) as ctx:
        ctx.invoked_subcommand = "submit"
        Command.invoke(group, ctx)
        sub = group.commands["submit"].make_context("submit", argv[at + 1 :], parent=ctx)
        state = ctx.obj
        assert isinstance(state, CliState)
        return state, sub.params


def _opt_of(param: TyperOption) -> Opt:
    info = param.type_descriptor.parameter_info
    kind = KINDS[param.type_descriptor.annotation]
    if kind == "path" and not getattr(info, "dir_okay", True):
        kind = "file"
    low, high = (None if bound is None else int(bound) for bound in (info.min, info.max))
    return Opt(param.name or "", tuple(param.opts), kind, param.default, low, high)


def test_the_fast_path_has_every_option_of_the_typer_command() -> None:
    group = _root()
    root = [_opt_of(p) for p in group.params if isinstance(p, TyperOption)]
    assert [o for o in root if o.name not in ("serve", "version")] == list(GLOBAL)
    submit = group.commands["submit"]
    own = [p for p in submit.params if isinstance(p, TyperOption) and p.expose_value]
    assert [_opt_of(p) for p in own] == list(SUBMIT)
    # The global options copied onto the command are the root's own.
    late = [_opt_of(p) for p in submit.params if isinstance(p, TyperOption) and not p.expose_value]
    assert late == list(GLOBAL)
    assert [p.name for p in submit.params if isinstance(p, TyperArgument)] == ["files"]


READ_ALIKE = [
    ["submit", "job.hero"],
    ["submit"],
    ["--config", "/dev/null", "--data-dir", "d", "submit", "a", "b", "--json"],
    ["-c", "x.toml", "submit", "-", "-t", "demo", "--circle", "c", "--type", "rhaiscript"],
    ["submit", "--timeout", "5", "--log", "--each-line", "-p", "0", "--retries", "0"],
    ["submit", "--delay", "30s", "--at", "2026-12-24T08:00", "--retries", "3", "-p", "9"],
    ["submit", "--backoff", "exponential", "--backoff-base", "1s", "--backoff-max", "5m"],
    ["submit", "--retry-on", "failed,timeout", "--timeout", "0.5", "--timeout", "7."],
    ["submit", "--unique-key", "k", "--unique-for", "5m", "--after", "1,2", "--wait"],
    ["submit", "--on-parent-error", "run", "--graph", "g.hero", "--json"],
    ["submit", "--graph", "-"],
    ["submit", "--topic=x", "a", "-ty", "--priority=3", "-p4", "--circle="],
    ["submit", "a", "--", "--json", "-t"],
    [
        *("--redis-url", "redis://a", "--ui-port", "1", "submit", "-", "--redis-url", "redis://b"),
        *("--host", "127.0.0.2", "--redis-port", "7001", "--webdav-port", "7002"),
        *("--log-level", "debug", "-c", "late.toml", "--data-dir", "late", "--ui-port", "2"),
    ],
]


@pytest.mark.parametrize("argv", READ_ALIKE)
def test_both_read_a_command_line_alike(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEROAGENT_CONFIG", raising=False)
    fast = parse_submit(argv)
    assert fast is not None
    state, params = _typer_reads(argv)
    assert fast[0] == state
    assert {**fast[1], "files": list(fast[1]["files"])} == {
        **params,
        "files": list(params["files"]),
    }


def test_both_take_the_config_file_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEROAGENT_CONFIG", "/etc/from-env.toml")
    for argv in (["submit"], ["-c", "given.toml", "submit"], ["submit", "-c", "late.toml"]):
        fast = parse_submit(argv)
        assert fast is not None
        assert fast[0] == _typer_reads(argv)[0]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--serve"],
        ["--version"],
        ["jobs"],
        ["--data-dir", "d", "job", "1"],
        ["submit", "--help"],
        ["-h", "submit"],
        ["submit", "-h"],
        ["submit", "--nope"],
        ["submit", "-p", "10"],
        ["submit", "-p", "x"],
        ["submit", "--retries", "-1"],
        ["submit", "--timeout", "1e3"],
        ["submit", "--json=yes"],
        ["submit", "--topic"],
        ["submit", "--topic", "-x"],
        ["--redis-port", "http", "submit"],
        ["--config", "/", "submit"],
    ],
)
def test_what_it_is_not_sure_of_goes_to_typer(argv: list[str]) -> None:
    assert parse_submit(argv) is None


def _typer_root_state(argv: list[str]) -> CliState:
    """The CliState the root's callback builds from the options before `worker`."""
    group = _root()
    with group.make_context("heroagent", argv) as ctx:
        ctx.invoked_subcommand = "worker"
        Command.invoke(group, ctx)
        assert isinstance(ctx.obj, CliState)
        return ctx.obj


@pytest.mark.parametrize(
    "argv",
    [
        ["worker"],
        ["--config", "/dev/null", "--data-dir", "d", "--redis-url", "redis://a:1", "worker"],
        ["-c", "x.toml", "--log-level", "debug", "--data-dir=worker", "worker"],
    ],
)
def test_a_worker_command_line_reads_as_typer_reads_it(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEROAGENT_CONFIG", raising=False)
    assert parse_worker(argv) == _typer_root_state(argv)
    # Nothing of its own to read: only the global options copied onto every command,
    # which the fast path leaves to typer when they come after `worker`.
    params = _root().commands["worker"].params
    assert all(isinstance(p, TyperOption) and not p.expose_value for p in params)
    assert [_opt_of(p) for p in params if isinstance(p, TyperOption)] == list(GLOBAL)


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "--help"],
        ["worker", "x"],
        ["worker", "--log-level", "debug"],
        ["--nope", "worker"],
        ["submit"],
        ["--serve"],
    ],
)
def test_a_worker_command_line_it_is_not_sure_of_goes_to_typer(argv: list[str]) -> None:
    assert parse_worker(argv) is None
