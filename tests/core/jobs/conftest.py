"""Fixtures of the job tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from core.config import Config
from core.engine import Engine
from tests.helpers import ValkeyProcess, engine_with_actors


@pytest.fixture
def shared(idle_engine: Engine, valkey: ValkeyProcess) -> tuple[Engine, ValkeyProcess]:
    """An engine that runs no jobs itself, and the external valkey it uses."""
    return idle_engine, valkey


@pytest.fixture
async def flaky_engine(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine whose actors include `flaky` and `inline` (flaky_/inline_actors.py here)."""
    modules = ("tests.core.jobs.flaky_actors", "tests.core.jobs.inline_actors")
    async with engine_with_actors(engine_config, *modules) as running:
        yield running
