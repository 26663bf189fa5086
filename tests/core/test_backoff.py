"""Reconnect waits: capped exponential backoff with full jitter, never zero."""

from __future__ import annotations

import random

from core.redis_server.backoff import Backoff, full_jitter


def test_backoff_grows_with_full_jitter_up_to_its_cap_and_never_to_zero() -> None:
    rand = random.Random(7)
    backoff = Backoff(base=0.1, cap=2.0, floor=0.02, rand=rand)
    waits = [backoff.next_delay() for _ in range(200)]
    assert all(0.02 <= w <= 2.0 for w in waits)
    # Jittered: not one fixed wait, and later waits reach well past the base.
    assert len({round(w, 6) for w in waits}) > 150
    assert max(waits[20:]) > 1.0
    backoff.reset()
    assert backoff.next_delay() <= 0.1
    assert full_jitter(0.1, 2.0, 10_000, rand) <= 2.0
