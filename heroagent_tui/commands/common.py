"""What every sub-command shares: the loaded config, one-line error exits, JSON output.

Typer-free, as `heroagent submit` runs without typer (heroagent_tui/fast.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from core.config import ENV_CONFIG_FILE, ConfigError, LoadedConfig, load_config

if TYPE_CHECKING:
    import typer

    from heroagent import JobView, LimitsView, ScheduleView

    View = JobView | LimitsView | ScheduleView


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line to stderr and exit (SystemExit: typer lets it through)."""
    print(f"heroagent: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def read_input(name: str | Path) -> str:
    """A file's text, or standard input's for `-`; one error line and exit 2 when unreadable."""
    try:
        if str(name) == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{name}: {exc.strerror or exc}", code=2)


def echo_json(value: View | Sequence[View]) -> None:
    """Print a view (a job, a schedule, a queue's limits) or a list of them as one JSON line.

    The wire form is the one the HTTP API and the request channel carry.
    """
    # core.api loads when a command prints, not for `--help` or the other commands.
    from core.api import JobView, LimitsView, job_wire, limits_wire, schedule_wire

    def wire(view: View) -> dict[str, Any]:
        if isinstance(view, JobView):
            return job_wire(view)
        if isinstance(view, LimitsView):
            return limits_wire(view)
        return schedule_wire(view)

    data = [wire(v) for v in value] if isinstance(value, Sequence) else wire(value)
    print(json.dumps(data), flush=True)


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


def root_state(config_file: Path | None, options: dict[str, Any]) -> CliState:
    """The CliState of the root's global options; $HEROAGENT_CONFIG names a file not given."""
    if config_file is None and os.environ.get(ENV_CONFIG_FILE):
        config_file = Path(os.environ[ENV_CONFIG_FILE])
    state = CliState(config_file=config_file)
    for name, value in options.items():
        state.set_option(name, value)
    return state


def state_of(ctx: typer.Context) -> CliState:
    """The CliState the root command stored."""
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj
