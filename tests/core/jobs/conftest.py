"""Fixtures of the job tests, and a watchdog to run their jobs in the test's own loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from core.config import Config
from core.engine import Engine
from core.watchdog import WatchDog
from core.watchdog.service import build_processors, build_registry, watchdog_settings
from tests.helpers import ValkeyProcess, engine_with_actors


@pytest.fixture
def shared(idle_engine: Engine, valkey: ValkeyProcess) -> tuple[Engine, ValkeyProcess]:
    """An engine that runs no jobs itself, and the external valkey it uses."""
    return idle_engine, valkey


@asynccontextmanager
async def running_watchdog(engine: Engine, worker_count: int) -> AsyncIterator[WatchDog]:
    """A started watchdog with `worker_count` slots on the engine's Redis, stopped after."""
    config = replace(engine.config, jobs=replace(engine.config.jobs, worker_count=worker_count))
    dog = WatchDog(
        engine.redis.loop_client(),
        build_processors(config, build_registry(config)),
        watchdog_settings(config),
    )
    await dog.start()
    try:
        yield dog
    finally:
        await dog.stop()
        await dog.redis.aclose()


@pytest.fixture
async def flaky_engine(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine whose actors include `flaky` and `inline` (flaky_/inline_actors.py here)."""
    modules = ("tests.core.jobs.flaky_actors", "tests.core.jobs.inline_actors")
    async with engine_with_actors(engine_config, *modules) as running:
        yield running
