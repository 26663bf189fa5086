"""Fixtures shared by the whole suite: real servers in temp dirs, configs that point at them."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.config import Config, load_config
from core.engine import Engine
from tests.helpers import ValkeyProcess, free_port, idle_config, start_valkey
from tests.sentinels import SentinelSet, local_launcher, local_set


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path, for unix sockets (sockaddr_un holds about 100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="ha-") as directory:
        yield Path(directory)


@pytest.fixture
def valkey(short_tmp: Path) -> Iterator[ValkeyProcess]:
    """A real valkey-server on a free port, stopped by its pid afterwards."""
    server = start_valkey(short_tmp)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sentinel_set(short_tmp: Path) -> Iterator[SentinelSet]:
    """A primary, its replica and three Sentinels on loopback, stopped afterwards."""
    nodes = local_set(short_tmp / "v", free_port)
    try:
        nodes.start(local_launcher)
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def engine_config(short_tmp: Path) -> Config:
    """A config whose data, ports and socket are this test's own."""
    return load_config(
        short_tmp / "no-such-config.toml",
        env={},
        flags={
            "data_dir": str(short_tmp / "data"),
            "redis.tcp_port": free_port(),
            "webdav.port": free_port(),
            "ui.port": free_port(),
        },
    ).config


@pytest.fixture
async def engine(engine_config: Config) -> AsyncIterator[Engine]:
    """A running engine (managed valkey, jobs, local watchdog) in this test's temp dir."""
    config = replace(engine_config, enable_webdav=False, enable_ui=False)
    async with Engine(config) as running:
        yield running


@pytest.fixture
async def idle_engine(engine_config: Config, valkey: ValkeyProcess) -> AsyncIterator[Engine]:
    """An engine that runs no jobs itself, on an external valkey: the test brings workers."""
    async with Engine(idle_config(engine_config, valkey)) as running:
        yield running


@pytest.fixture
async def ui_engine(engine_config: Config) -> AsyncIterator[Engine]:
    """A running engine with the HTTP UI on a free loopback port (and no WebDAV)."""
    config = replace(engine_config, enable_webdav=False)
    async with Engine(config) as running:
        yield running
