"""Jobs ended per second per queue over a sliding window: pure, the caller gives the times."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_SECONDS = 5.0
# Ends closer together than this share one bucket, so memory per queue stays bounded
# (window / resolution buckets) however fast a queue drains.
RESOLUTION_SECONDS = 0.1
# A rate is never taken over less than this, so the first few ends seen do not spike it.
MIN_SPAN_SECONDS = 1.0


@dataclass(eq=False)
class EndRates:
    """Counts ends by their timestamps; `rate(queue, now)` is the count in the window per second.

    Over the first `window` seconds after `started` the count is divided by the time
    observed so far (at least `MIN_SPAN_SECONDS`): nothing is known from before it, and
    dividing by the whole window would show a queue draining at 200/s as 40/s.
    """

    started: float
    window: float = WINDOW_SECONDS
    resolution: float = RESOLUTION_SECONDS
    _buckets: dict[str, deque[list[float]]] = field(default_factory=dict, init=False, repr=False)
    """queue → [bucket start, count] oldest first."""

    def add(self, queue: str, ts: float, count: int = 1) -> None:
        """Record `count` jobs of `queue` that ended at `ts`."""
        buckets = self._buckets.setdefault(queue, deque())
        if buckets and ts < buckets[-1][0] + self.resolution:
            # Same bucket, or a little out of order (events of one batch): counted with it.
            buckets[-1][1] += count
        else:
            buckets.append([ts, float(count)])
        self._prune(buckets, buckets[-1][0])

    def rate(self, queue: str, now: float) -> float:
        """Ends per second of `queue` in the window that ends at `now`."""
        buckets = self._buckets.get(queue)
        if not buckets:
            return 0.0
        self._prune(buckets, now)
        cutoff = now - self.window
        ended = 0.0
        for ts, count in buckets:
            if ts > now:
                break
            # The oldest bucket may straddle the window's start: only its share inside counts.
            inside = min(1.0, (ts + self.resolution - cutoff) / self.resolution)
            ended += count * inside
        span = min(self.window, max(MIN_SPAN_SECONDS, now - self.started))
        return ended / span

    def queues(self) -> list[str]:
        """Every queue an end was recorded for."""
        return list(self._buckets)

    def _prune(self, buckets: deque[list[float]], now: float) -> None:
        while buckets and buckets[0][0] + self.resolution <= now - self.window:
            buckets.popleft()
