"""Fixtures shared by the whole suite: real servers in temp dirs, configs that point at them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.config import Config, load_config
from core.engine import Engine
from tests.helpers import ValkeyProcess, free_port, idle_config, start_valkey
from tests.sentinels import SentinelSet, local_launcher, local_set

# Room a tmpfs must have before the tests' data goes there (a container's /dev/shm can be
# 64 MB, and the WebDAV and OurDB tests write hundreds of MB).
TMPFS_MIN_FREE = 4 << 30


def _memory_tmp() -> str | None:
    """/dev/shm when it is a roomy, writable tmpfs, else None (the system's temp dir).

    Every engine a test starts writes and fsyncs its index, OurDB and AOF there: on a
    disk that is about 0.1 s a test in start and stop alone, on a tmpfs nothing. What
    the tests check does not change: a killed process leaves the same files on both.
    """
    shm = "/dev/shm"
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if not os.access(shm, os.W_OK | os.X_OK) or stats.f_bavail * stats.f_frsize < TMPFS_MIN_FREE:
        return None
    return shm


MEMORY_TMP = _memory_tmp()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path, for unix sockets (sockaddr_un holds about 100 bytes).

    In memory when the machine has a roomy tmpfs (see `_memory_tmp`).
    """
    with tempfile.TemporaryDirectory(prefix="ha-", dir=MEMORY_TMP) as directory:
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
