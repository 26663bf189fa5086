"""Stopping tasks that may be parked in a blocking Redis read (BLPOP, XREADGROUP BLOCK)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.services import RECANCEL_SECONDS, cancel_until_done

# A running job's cancel runs its cleanup (a child's process group killed and reaped);
# a second cancel would cut that short, so jobs get this long before one.
JOB_GRACE_SECONDS = 0.2


async def cancel_blocked(
    tasks: Sequence[asyncio.Task[None]], redis: aioredis.Redis, *, grace: float = RECANCEL_SECONDS
) -> None:
    """Cancel tasks and wait for them, dropping the client's connections if they linger.

    redis-py can sit out a blocking read's timeout despite a cancel; closing the
    connections ends such reads at once (the pool reconnects on next use). A cancel can
    also be lost (see `cancel_until_done`): a task still running `grace` seconds after
    one gets another, until it ends.
    """
    if not tasks:
        return
    lingering = await cancel_until_done(tasks, grace, grace=grace)
    if lingering:
        await redis.connection_pool.disconnect()
        await cancel_until_done(lingering, math.inf, grace=grace)
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
            await task
