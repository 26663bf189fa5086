"""WatchDog: N job slots that block on Redis for work, run jobs under timeouts, and report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
from collections import deque
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from core.events import EventBus, JobLogLine
from core.heroscript import ActionContext
from core.jobs import keys
from core.jobs.model import JobStatus
from core.jobs.queue import JobQueue, Lease
from core.redis_server.blocking import cancel_blocked
from core.watchdog.processors import Outcome, Processors

log = logging.getLogger(__name__)

# How long an idle slot blocks before it re-checks that it should still run (below the
# client's 5 s socket timeout, which redis-py 8 sets by default). Pickup does
# not wait for this: an enqueue wakes a blocked slot at once.
IDLE_BLOCK_SECONDS = 2.0
MAX_LOG_LINES = 200


@dataclass(frozen=True)
class WatchDogSettings:
    """How the pool runs."""

    worker_count: int = 5
    lease_seconds: float = 10.0
    max_attempts: int = 3
    worker_id: str = ""


def new_worker_id() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class WatchDog:
    """Runs jobs from every queue, `worker_count` at a time, in this process.

    It never writes OurDB: outcomes go to Redis (the job hash and the stream), and the
    engine that owns OurDB persists them, so the same code runs on other machines.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        processors: Processors,
        settings: WatchDogSettings,
        *,
        bus: EventBus | None = None,
    ) -> None:
        self.redis = redis
        self.queue = JobQueue(redis)
        self.processors = processors
        self.settings = settings
        self.worker_id = settings.worker_id or new_worker_id()
        self.bus = bus
        self.running: dict[int, asyncio.Task[Outcome]] = {}
        self.completed = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        """Register with the server and start the slots, the heartbeat and the reaper."""
        await self.queue.register(self.worker_id, self.settings.lease_seconds)
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="watchdog-heartbeat"),
            asyncio.create_task(self._reaper(), name="watchdog-reaper"),
        ]
        self._tasks += [
            asyncio.create_task(self._slot(n), name=f"watchdog-slot-{n}")
            for n in range(self.settings.worker_count)
        ]
        log.info("watchdog %s running %d slots", self.worker_id, self.settings.worker_count)

    async def stop(self) -> None:
        """Stop the slots; jobs still running go back to their queues at once."""
        # redis-py can turn a cancellation mid-read into a timeout error; the flag keeps
        # a slot from mistaking that for a network fault and carrying on.
        self._stopping = True
        await cancel_blocked(self._tasks, self.redis)
        self._tasks = []
        with contextlib.suppress(RedisError):
            await self.queue.unregister(self.worker_id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            try:
                await self.queue.heartbeat(self.worker_id, self.settings.lease_seconds)
                # After a server restart without data our registration is gone too.
                await self.redis.sadd(keys.WORKERS, self.worker_id)
            except RedisError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _reaper(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 2)
            try:
                handled = await self.queue.reap(self.settings.max_attempts)
            except RedisError as exc:
                log.warning("reaper failed: %s", exc)
                continue
            if handled:
                log.warning("reclaimed %d jobs from lost workers", handled)

    async def _slot(self, number: int) -> None:
        while not self._stopping:
            try:
                lease = await self.queue.fetch(self.worker_id)
                if lease is None:
                    await self.queue.wait_for_work(IDLE_BLOCK_SECONDS)
                    continue
                await self._run(lease)
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                level = logging.WARNING if isinstance(exc, RedisConnectionError) else logging.ERROR
                log.log(level, "slot %d: %s; retrying", number, exc)
                await asyncio.sleep(0.2)

    async def _run(self, lease: Lease) -> None:
        job = lease.job
        lines: deque[str] = deque(maxlen=MAX_LOG_LINES)
        ctx = ActionContext(job_id=job.job_id, log=self._logger(job.job_id, job.log, lines))
        task = asyncio.create_task(self._execute(lease, ctx))
        self.running[job.job_id] = task
        try:
            outcome = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the pool is stopping: the job goes back to its queue
            outcome = Outcome(JobStatus.ERROR, error="cancelled")
        finally:
            self.running.pop(job.job_id, None)
        recorded = await self.queue.complete(
            lease, outcome.status, result=outcome.result, error=outcome.error, log_lines=lines
        )
        if recorded:
            self.completed += 1
        else:
            log.info("job %d was handed to another worker; outcome dropped", job.job_id)

    async def _execute(self, lease: Lease, ctx: ActionContext) -> Outcome:
        job = lease.job
        try:
            async with asyncio.timeout(job.timeout):
                return await self.processors.run(job, ctx)
        except TimeoutError:
            ctx.cancelled.set()
            return Outcome(JobStatus.ERROR, error=f"timeout after {job.timeout:g}s")
        except Exception as exc:
            log.exception("job %d crashed its processor", job.job_id)
            return Outcome(JobStatus.ERROR, error=f"{type(exc).__name__}: {exc}")

    def cancel(self, job_id: int) -> bool:
        """Cancel a job running here; False when it is not running here."""
        task = self.running.get(job_id)
        if task is None:
            return False
        task.cancel()
        return True

    def _logger(self, job_id: int, keep: bool, lines: deque[str]) -> _JobLog:
        return _JobLog(self, job_id, keep, lines)


class _JobLog:
    """The `log` of an action: keeps lines (when the job asked) and streams them as events.

    Sync actions call it from worker threads, so it hops onto the loop before publishing.
    """

    def __init__(self, dog: WatchDog, job_id: int, keep: bool, lines: deque[str]) -> None:
        self.dog = dog
        self.job_id = job_id
        self.keep = keep
        self.lines = lines
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        # Lines wait here for one flusher at a time, so a chatty job costs one
        # connection and a round trip per burst, not one per line.
        self._unsent: list[str] = []
        self._flusher: asyncio.Task[None] | None = None

    def __call__(self, line: str) -> None:
        if threading.get_ident() != self.loop_thread:
            self.loop.call_soon_threadsafe(self, line)
            return
        if not self.keep:
            return
        self.lines.append(line)
        if self.dog.bus is not None:
            self.dog.bus.publish(JobLogLine(job_id=self.job_id, line=line))
        self._unsent.append(line)
        if self._flusher is None or self._flusher.done():
            self._flusher = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._unsent:
            lines, self._unsent = self._unsent, []
            pipe = self.dog.redis.pipeline(transaction=False)
            for line in lines:
                pipe.publish(
                    keys.EVENTS_CHANNEL,
                    json.dumps({"type": "log", "id": self.job_id, "line": line}),
                )
            try:
                await pipe.execute()
            except (RedisError, OSError) as exc:  # pub/sub is best effort
                log.debug("log lines of job %d not published: %s", self.job_id, exc)
