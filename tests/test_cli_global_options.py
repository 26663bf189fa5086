"""Global options (`--redis-url`, `--config`, …) before or after any sub-command; after wins."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from heroagent_tui.cli import app
from tests.core.test_serve import Serve, serving
from tests.helpers import run_heroagent

runner = CliRunner()

GLOBAL = (
    "--config",
    "--data-dir",
    "--host",
    "--redis-port",
    "--redis-url",
    "--webdav-port",
    "--ui-port",
    "--log-level",
)


def show(*args: str) -> dict[str, dict[str, object]]:
    """`heroagent ARGS` (ending in `config show --json` somewhere), its keys."""
    result = runner.invoke(app, list(args), env={"HEROAGENT_CONFIG": ""})
    assert result.exit_code == 0, result.output
    keys: dict[str, dict[str, object]] = json.loads(result.stdout)["keys"]
    return keys


def test_every_global_option_is_taken_after_the_sub_command(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[jobs]\nworker_count = 3\n")
    keys = show(
        *("config", "show", "--json", "-c", str(file), "--data-dir", str(tmp_path / "d")),
        *("--host", "127.0.0.2", "--redis-port", "7001", "--redis-url", "redis://h:7002"),
        *("--webdav-port", "7003", "--ui-port", "7004", "--log-level", "debug"),
    )
    assert keys["jobs.worker_count"] == {"value": 3, "source": f"file {file}"}
    assert keys["data_dir"] == {"value": str(tmp_path / "d"), "source": "flag"}
    assert keys["host"] == {"value": "127.0.0.2", "source": "flag"}
    assert keys["redis.tcp_port"] == {"value": 7001, "source": "flag"}
    assert keys["redis.url"] == {"value": "redis://h:7002", "source": "flag"}
    assert keys["webdav.port"] == {"value": 7003, "source": "flag"}
    assert keys["ui.port"] == {"value": 7004, "source": "flag"}
    assert keys["log_level"] == {"value": "debug", "source": "flag"}


def test_after_the_sub_command_wins_and_before_still_counts(tmp_path: Path) -> None:
    before = tmp_path / "before.toml"
    before.write_text("[jobs]\nworker_count = 2\n")
    after = tmp_path / "after.toml"
    after.write_text("[jobs]\nworker_count = 5\n")
    keys = show(
        *("--config", str(before), "--redis-port", "1111", "--ui-port", "1112"),
        *("config", "show", "--json", "--config", str(after), "--redis-port", "2222"),
    )
    assert keys["redis.tcp_port"]["value"] == 2222
    assert keys["ui.port"]["value"] == 1112  # given only before: kept
    assert keys["jobs.worker_count"]["value"] == 5


def _leaves(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(command, TyperGroup):
        if path and command.invoke_without_command:
            yield path  # a group that acts itself, `heroagent jobs` or `heroagent dead`
        for name, sub in command.commands.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield path


def test_every_sub_command_lists_the_global_options_in_its_help() -> None:
    leaves = list(_leaves(typer.main.get_command(app)))
    assert ("submit",) in leaves
    assert ("config", "show") in leaves
    assert {("jobs",), ("jobs", "purge"), ("dead",), ("dead", "purge")} <= set(leaves)
    for path in leaves:
        result = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        assert "Global options" in result.output, path
        for option in GLOBAL:
            assert option in result.output, (path, option)


@pytest.fixture
def served(short_tmp: Path) -> Iterator[Serve]:
    with serving(short_tmp / "data") as server:
        yield server


def test_submit_with_redis_url_after_the_sub_command(served: Serve, short_tmp: Path) -> None:
    # The managed server asks for the password the engine keeps in its data dir.
    password = (served.data / "redis" / "password").read_text().strip()
    url = f"redis://:{password}@127.0.0.1:{served.port}"
    done = run_heroagent(
        *("--data-dir", str(short_tmp / "cli")),
        # A wrong server before the sub-command: the one after it must win.
        *("--redis-url", "redis://127.0.0.1:1", "submit", "-", "--redis-url", url),
        *("--topic", "t", "--wait", "--json", "-c", os.devnull),
        stdin="!!fake.return_success message:'after the sub-command'\n",
        env={**os.environ, "HEROAGENT_CONFIG": ""},
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "done"
    assert job["topic"] == "t"
    assert "after the sub-command" in job["result"]
