"""Stopping tasks that may be parked in a blocking Redis read (BLPOP, XREADGROUP BLOCK)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError


async def cancel_blocked(tasks: Sequence[asyncio.Task[None]], redis: aioredis.Redis) -> None:
    """Cancel tasks and wait for them, dropping the client's connections if they linger.

    redis-py can sit out a blocking read's timeout despite a cancel; closing the
    connections ends such reads at once (the pool reconnects on next use).
    """
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, lingering = await asyncio.wait(tasks, timeout=0.2)
    if lingering:
        await redis.connection_pool.disconnect()
    while lingering:
        # A cancel can be lost: a task that loops on after one (it was seen with the
        # promoter, cancelled as its sleep ended) gets another until it ends.
        _, lingering = await asyncio.wait(lingering, timeout=0.2)
        for task in lingering:
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
            await task
