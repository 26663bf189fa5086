"""A running engine's objects are frozen out of full collections, and thawed once none runs."""

from __future__ import annotations

import gc

from core.memory import THRESHOLDS, freeze_long_lived, thaw_long_lived


def test_frozen_while_an_engine_runs_and_thawed_after_the_last() -> None:
    before = gc.get_threshold()
    freeze_long_lived()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == THRESHOLDS
    freeze_long_lived()  # a second engine in the same process
    thaw_long_lived()
    assert gc.get_freeze_count() > 0  # one still runs
    thaw_long_lived()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    thaw_long_lived()  # more thaws than freezes change nothing
    assert gc.get_threshold() == before
