"""Reaching the managed server with its password: the CLI, `heroagent redis-cli`, a local worker."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.launch import heroagent_argv
from core.config import Config
from core.engine import Engine
from tests.core.test_serve import serving
from tests.helpers import headless_config, wait_job_ended


def test_redis_cli_helper_is_logged_in_without_the_password_in_argv(short_tmp: Path) -> None:
    with serving(short_tmp / "data") as serve:
        result = subprocess.run(
            heroagent_argv(serve.data, "redis-cli", "ping"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "PONG"
        assert "Warning" not in result.stderr  # no "-a on the command line" warning
        # What clients may not do, the helper may not either.
        denied = subprocess.run(
            heroagent_argv(serve.data, "redis-cli", "config", "set", "appendfsync", "no"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "no permissions" in denied.stdout + denied.stderr


def test_redis_cli_helper_without_an_engine_says_so(short_tmp: Path) -> None:
    result = subprocess.run(
        heroagent_argv(short_tmp / "empty", "redis-cli", "ping"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("heroagent: no password in ")


@pytest.fixture
async def owner(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine that runs no jobs itself."""
    async with Engine(headless_config(engine_config, worker_count=0)) as engine:
        yield engine


async def test_worker_given_the_engines_data_dir_runs_its_jobs(owner: Engine) -> None:
    worker = subprocess.Popen(
        heroagent_argv(
            owner.config.data_path, "--redis-port", str(owner.config.redis.tcp_port), "worker"
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        view = await owner.api.submit("!!fake.return_success message:local\n", topic="t")
        ended = await wait_job_ended(owner, view.job_id, 30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
    assert ended.status == "done"
    assert json.loads(ended.result)[0]["result"] == "local"
    assert ended.worker.split(":")[1] == str(worker.pid)


def test_worker_with_neither_url_nor_engine_data_dir_explains(short_tmp: Path) -> None:
    result = subprocess.run(
        heroagent_argv(short_tmp / "empty", "worker"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--data-dir of an engine on this machine" in result.stdout + result.stderr
