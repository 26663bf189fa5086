"""Fixtures of the job tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from core.config import Config
from core.engine import Engine


@pytest.fixture
async def flaky_engine(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine whose actors include `flaky` (tests/core/jobs/flaky_actors.py)."""
    config = replace(
        engine_config,
        enable_webdav=False,
        enable_ui=False,
        actors=replace(engine_config.actors, modules=["tests.core.jobs.flaky_actors"]),
    )
    async with Engine(config) as running:
        yield running
