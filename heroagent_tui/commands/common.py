"""What every sub-command shares: the loaded config and one-line error exits."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer

from core.config import ConfigError, LoadedConfig, load_config


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line to stderr and exit."""
    typer.echo(f"heroagent: {message}", err=True)
    raise typer.Exit(code)


def read_input(name: str | Path) -> str:
    """A file's text, or standard input's for `-`; one error line and exit 2 when unreadable."""
    try:
        if str(name) == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{name}: {exc.strerror or exc}", code=2)


# Global option (its parameter name) → the config key it sets; `config_file` is apart.
GLOBAL_FLAGS = {
    "data_dir": "data_dir",
    "host": "host",
    "redis_port": "redis.tcp_port",
    "redis_url": "redis.url",
    "webdav_port": "webdav.port",
    "ui_port": "ui.port",
    "log_level": "log_level",
}
GLOBAL_OPTIONS = ("config_file", *GLOBAL_FLAGS)


@dataclass
class CliState:
    """The global options, kept until a command needs the config."""

    config_file: Path | None
    flags: dict[str, Any] = field(default_factory=dict)

    def set_option(self, name: str, value: Any) -> None:
        """Take one global option; the one given last wins (after a sub-command beats before)."""
        if value is None:
            return
        if name == "config_file":
            self.config_file = Path(value)
        else:
            self.flags[GLOBAL_FLAGS[name]] = str(value) if name == "data_dir" else value

    def load(self) -> LoadedConfig:
        """The effective config; a bad one ends the program with one line (exit 2)."""
        try:
            return load_config(
                self.config_file, flags=self.flags, file_required=self.config_file is not None
            )
        except ConfigError as exc:
            fail(f"config error: {exc}", 2)


def state_of(ctx: typer.Context) -> CliState:
    """The CliState the root command stored."""
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj
