"""Retry decisions: which attempts go again, and after how long (fixed or full-jitter backoff)."""

from __future__ import annotations

import random

from core.jobs.model import Job
from core.redis_server.backoff import full_jitter


def backoff_delay(job: Job, attempt: int, *, rand: random.Random | None = None) -> float:
    """Seconds to wait before the attempt after `attempt` (1 for the first one).

    Fixed waits `backoff_base` each time. Exponential uses full jitter,
    `uniform(0, min(backoff_max, backoff_base * 2**(attempt-1)))`, so retries of many jobs
    that failed together spread out instead of coming back in one burst. It is one line
    of arithmetic, so it is written here rather than pulled from a retry library (whose
    wait objects expect to own the retry loop, which here lives across processes).
    """
    base = max(0.0, job.backoff_base)
    ceiling = max(0.0, job.backoff_max)
    if job.backoff != "exponential":
        return min(base, ceiling) if ceiling else base
    return full_jitter(base, ceiling, attempt, rand)


def should_retry(job: Job, kind: str) -> bool:
    """Whether the attempt that just ended (counted in `job.attempts`) may be retried."""
    return job.retryable(kind) and job.attempts <= job.retries
