"""Waits between tries of a lost server: capped exponential backoff with full jitter."""

from __future__ import annotations

import random

RECONNECT_BASE = 0.1
RECONNECT_CAP = 5.0
# Full jitter can draw a wait near zero; the floor keeps a loop whose server is gone
# from spinning even on its first tries.
RECONNECT_FLOOR = 0.02


def full_jitter(base: float, cap: float, attempt: int, rand: random.Random | None = None) -> float:
    """`uniform(0, min(cap, base * 2**(attempt-1)))` seconds, for `attempt` 1, 2, ...

    Many clients that lost one server together (a failover, a restart) then come back
    spread out instead of in one burst. The exponent is capped: past 2**60 the cap wins
    anyway, and floats stay finite.
    """
    ceiling = min(max(0.0, cap), max(0.0, base) * 2.0 ** min(max(0, attempt - 1), 60))
    return (rand or random).uniform(0.0, ceiling)


class Backoff:
    """The waits of one retry loop: longer after each failure, short again after a success."""

    def __init__(
        self,
        base: float = RECONNECT_BASE,
        cap: float = RECONNECT_CAP,
        floor: float = RECONNECT_FLOOR,
        rand: random.Random | None = None,
    ) -> None:
        self.base = base
        self.cap = cap
        self.floor = floor
        self.rand = rand
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure and return the wait before the next try."""
        self.failures += 1
        return max(self.floor, full_jitter(self.base, self.cap, self.failures, self.rand))

    async def wait(self) -> None:
        """Sleep the next delay."""
        import asyncio  # here: the blocking client uses next_delay and never loads asyncio

        await asyncio.sleep(self.next_delay())

    def reset(self) -> None:
        """The server answered: the next failure starts from the shortest waits again."""
        self.failures = 0
