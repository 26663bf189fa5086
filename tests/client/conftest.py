"""Fixtures of the client library tests: a real `heroagent --serve` and configs that reach it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Config, load_config
from tests.core.test_serve import Serve, serving

ROOT = Path(__file__).resolve().parents[2]


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


def run_python(server: Serve, code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh Python that finds `server` as the docs say: by HEROAGENT_* vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEROAGENT_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**env, **env_of(server)},
    )


@pytest.fixture(scope="module")
def served() -> Iterator[Serve]:
    """One engine for a module's tests (starting one takes seconds on a loaded machine)."""
    with tempfile.TemporaryDirectory(prefix="ha-") as directory:
        env = {"HEROAGENT_JOBS_WORKER_COUNT": "4"}
        with serving(Path(directory) / "data", env=env) as server:
            yield server


@pytest.fixture
def config(served: Serve) -> Config:
    return config_of(served)
