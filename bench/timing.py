"""Timing a piece of work the same way in every benchmark: the best or typical of runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def best(runs: int, work: Callable[[], object]) -> float:
    """Seconds one call of `work` takes: the fastest of 1-2 runs, the median of 3 or more."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times) if runs < 3 else statistics.median(times)
