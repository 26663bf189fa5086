"""The engine process's start-up objects are frozen out of full collections, once a process."""

from __future__ import annotations

import gc

from core.memory import THRESHOLDS, freeze_long_lived


def test_freezes_once_a_process() -> None:
    freeze_long_lived()  # the first call here, or an engine started before froze already
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == THRESHOLDS
    frozen = gc.get_freeze_count()
    alive = [[i] for i in range(1_000)]
    assert freeze_long_lived() is False
    # Objects made after the freeze stay collectable: a second call froze nothing.
    assert gc.get_freeze_count() == frozen
    assert len(alive) == 1_000
