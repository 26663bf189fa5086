"""Fixtures of the client library tests: a real `heroagent --serve` and configs that reach it."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Config, load_config
from tests.core.test_serve import Serve
from tests.helpers import pid_running


def start_served(data: Path, **env: str) -> Serve:
    """A served engine with its own data dir, ready; stop it with `stop_served`."""
    server = Serve(data, env=env)
    try:
        server.wait_ready()
    except BaseException:
        stop_served(server)
        raise
    return server


def stop_served(server: Serve) -> None:
    pid = server.server_pid()
    server.close()
    if pid is not None and pid_running(pid):
        os.kill(pid, signal.SIGKILL)


def config_of(server: Serve) -> Config:
    """The config a client on this machine uses to reach `server` (no user config file)."""
    return load_config(
        Path(os.devnull),
        env={},
        flags={"data_dir": str(server.data), "redis.tcp_port": server.port},
    ).config


def env_of(server: Serve) -> dict[str, str]:
    """HEROAGENT_* variables that point `Client()` (no arguments) at `server`."""
    return {
        "HEROAGENT_CONFIG": os.devnull,
        "HEROAGENT_DATA_DIR": str(server.data),
        "HEROAGENT_REDIS_TCP_PORT": str(server.port),
    }


@pytest.fixture(scope="module")
def served() -> Iterator[Serve]:
    """One engine for a module's tests (starting one takes seconds on a loaded machine)."""
    with tempfile.TemporaryDirectory(prefix="ha-") as directory:
        server = start_served(Path(directory) / "data", HEROAGENT_JOBS_WORKER_COUNT="4")
        try:
            yield server
        finally:
            stop_served(server)


@pytest.fixture
def config(served: Serve) -> Config:
    return config_of(served)
