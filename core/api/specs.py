"""JobSpec: what a caller supplies for one new job, as a batch item or a single submit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobSpec:
    """One job to create: its params and where and how it runs.

    The engine checks it (names, params type, size, timeout, the HeroScript itself) when
    it is submitted; building one checks nothing.
    """

    params: str
    topic: str = "default"
    circle: str = "default"
    params_type: str = "heroscript"
    timeout: float = 60.0
    log: bool = False
    # Wait `delay` seconds, or until the epoch time `run_at`, before it is queued.
    delay: float = 0.0
    run_at: float = 0.0
    # The retry policy; None takes the queue's default from the config.
    retries: int | None = None
    backoff: str | None = None
    backoff_base: float | None = None
    backoff_max: float | None = None
    retry_on: tuple[str, ...] | None = None
