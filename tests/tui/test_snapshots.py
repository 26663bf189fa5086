"""Snapshot tests of every screen with deterministic data (fixed clock, ids, ports, paths)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.config import Config
from tests.tui.scenarios import SCENARIOS, SIZE, Scenario, scenario_app


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_screen(
    snap_compare: Callable[..., bool], engine_config: Config, scenario: Scenario
) -> None:
    app = scenario_app(engine_config)
    assert snap_compare(app, terminal_size=SIZE, run_before=scenario.run_before(app))
