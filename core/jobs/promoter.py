"""Promoter: one process at a time moves due scheduled jobs into their queues."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.jobs import keys, scripts
from core.jobs.queue import JobQueue
from core.redis_server.backoff import Backoff
from core.redis_server.blocking import cancel_blocked
from core.services import supervised_task

log = logging.getLogger(__name__)

# The lock's lease: a promoter that dies is replaced within this time.
LOCK_MS = 3_000
# The longest a holder sleeps between renewals (well under the lease), and the poll of
# a promoter that does not hold the lock.
RENEW_SECONDS = 1.0
# Jobs moved per script call: bounds the time the server spends in one atomic step.
BATCH = 1_000
# BLPOP's shortest useful timeout; 0 would mean "forever".
MIN_BLOCK = 0.01


class Promoter:
    """Moves due jobs from the scheduled set to their queues while it holds the lock.

    The jobs service of every engine runs one, and so does every `heroagent worker`
    (through `start_promoter`), so a system with no engine running still promotes.

    Any number may run (engines, `heroagent worker`s): the lock picks one, and the
    PROMOTE script's ZREM makes a double move impossible even if two held it at once.
    The holder sleeps on the schedule bell until the earliest due time, so an idle
    system costs one renewal a second and a due job is queued within milliseconds.
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.queue = JobQueue(redis)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.moved = 0
        self.holding = False
        self._lease = redis.register_script(scripts.LEASE)
        self._release = redis.register_script(scripts.RELEASE)

    async def run(self) -> None:
        """The loop: take or renew the lock, promote what is due, sleep until next due."""
        backoff = Backoff()
        while True:
            try:
                await self.step()
                backoff.reset()
            except (RedisError, OSError) as exc:
                self.holding = False
                log.warning("promoter: %s; retrying", exc)
                await backoff.wait()

    async def step(self) -> None:
        """One turn of the loop."""
        self.holding = bool(
            await self._lease(keys=[keys.PROMOTER_LOCK], args=[self.token, LOCK_MS])
        )
        if not self.holding:
            await asyncio.sleep(RENEW_SECONDS)
            return
        deadline = time.monotonic() + RENEW_SECONDS
        while time.monotonic() < deadline:
            moved, first = await self.queue.promote_due(BATCH)
            self.moved += moved
            if moved >= BATCH:
                continue  # more are due now
            wait = deadline - time.monotonic()
            if first is not None:
                wait = min(wait, first - time.time())
            if wait <= 0:
                continue
            # Woken early by a newly scheduled job, whose time may be sooner.
            await self.redis.blpop([keys.SCHEDULE_BELL], timeout=max(MIN_BLOCK, wait))

    async def release(self) -> None:
        """Give the lock up so another promoter takes over at once."""
        with contextlib.suppress(RedisError, OSError):
            await self._release(keys=[keys.PROMOTER_LOCK], args=[self.token])
        self.holding = False


async def start_promoter(redis: aioredis.Redis) -> tuple[Promoter, asyncio.Task[None]]:
    """A supervised promoter loop on `redis`, for processes without the service host."""
    promoter = Promoter(redis)
    return promoter, supervised_task("promoter", promoter.run, log)


async def stop_promoter(promoter: Promoter, task: asyncio.Task[None]) -> None:
    """Stop a loop from `start_promoter` and give its lock up."""
    await cancel_blocked([task], promoter.redis)
    await promoter.release()
