"""WatchDog: N job slots that block on Redis for work, run jobs under timeouts, and report."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import math
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from core.events import JobLogLine, JobProgress, job_log_wire
from core.events.bus import EventBus
from core.heroscript import ActionContext, Playbook
from core.heroscript.inline import INLINE_BUDGET_SECONDS
from core.jobs import keys
from core.jobs.model import ErrorKind, Job, JobStatus
from core.jobs.queue import Completion, JobQueue, Lease
from core.jobs.retry import backoff_delay, should_retry
from core.redis_server.backoff import Backoff
from core.redis_server.blocking import JOB_GRACE_SECONDS, cancel_blocked
from core.redis_server.channels import follow_channel
from core.services import supervised_task
from core.watchdog.processors import Outcome, Processors

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long an idle slot blocks before it re-checks that it should still run (below the
# client's 5 s socket timeout, which redis-py 8 sets by default). Pickup does
# not wait for this: an enqueue wakes a blocked slot at once.
IDLE_BLOCK_SECONDS = 2.0
MAX_LOG_LINES = 200
# How long one read of the cancel channel waits before it reads again.
CANCEL_READ_SECONDS = 1.0
# Cancels of jobs not running here that are kept, in case the job's FETCH reply is still
# on its way: it comes on another connection, so it can arrive after the cancel.
EARLY_CANCELS_KEPT = 1000
# A job's progress goes out at most once in this many seconds (the newest value wins),
# so an action may report on every step of a tight loop.
PROGRESS_SECONDS = 0.1
# A job still running this long after it started has its `active` version reported on
# its own (STARTED), so readers of the history see it run; one that ends sooner has that
# version carried by its end's stream entry: one entry, one batch, one sync for both.
REPORT_ACTIVE_AFTER_SECONDS = 0.05


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
        # Slots still held by the thread of a plain `def` action that outlived its
        # job's timeout or cancel: the job has ended, the slot is free when the thread is.
        self.abandoned = 0
        # Background loops that crashed and were restarted.
        self.restarts = 0
        self._leases: dict[int, Lease] = {}
        # Jobs fetched and not yet reported: what our processing list should show.
        self._held: set[int] = set()
        # Ids the list showed at the last heartbeat that we do not hold.
        self._orphans: set[int] = set()
        self.orphans_released = 0
        # One thread per slot: a held slot holds its thread, so sync actions never wait
        # for threads, and never starve the loop's default executor of its own.
        self._threads = ThreadPoolExecutor(
            max_workers=max(1, settings.worker_count), thread_name_prefix="action"
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: set[asyncio.Task[None]] = set()
        # Jobs run at once in the dispatcher (every action inline) whose outcome is on
        # its way. Up to `worker_count` of them hold no slot: the next fetch goes out
        # while the last batch's report is on the wire, instead of after it (a fetch
        # and a report were two round trips in a row per batch). Beyond that each holds
        # its slot until reported, as a job's task does, so a report that cannot get
        # through stops the fetching after one more batch.
        self._inline = 0
        self._slot_freed = asyncio.Event()
        self._reporter = Reporter(self.queue, lambda: self._stopping)
        self._stopping = False
        self._draining = False
        # Jobs taken and not yet reported; the drain waits for this to reach 0.
        self._unreported = 0
        self._all_reported = asyncio.Event()
        self._all_reported.set()
        # Set once the server confirms our cancel subscription: no job is taken before,
        # or its cancel could be published before we listen, and be lost.
        self._hearing_cancels = asyncio.Event()
        # Ids of cancels that found no job of that id running here, oldest first.
        self._early_cancels: dict[int, bool] = {}
        # Running jobs due to have their `active` version reported, and the task at it.
        self._started: list[Lease] = []
        self._reporting_started: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register with the server and start fetching, the heartbeat and the reaper."""
        await self.queue.register(
            self.worker_id, self.settings.lease_seconds, self.settings.worker_count
        )
        self._tasks = [
            supervised_task(f"watchdog-{name}", run, log, self._crashed)
            for name, run in (
                ("heartbeat", self._heartbeat),
                ("reaper", self._reaper),
                ("dispatch", self._dispatch),
                ("cancels", self._listen_cancels),
            )
        ]
        log.info("watchdog %s running %d slots", self.worker_id, self.settings.worker_count)

    async def stop(self) -> None:
        """Stop fetching and running; jobs still running go back to their queues at once."""
        # redis-py can turn a cancellation mid-read into a timeout error; the flag keeps
        # the dispatcher from mistaking that for a network fault and carrying on.
        self._stopping = True
        reporting = [self._reporting_started] if self._reporting_started else []
        await asyncio.gather(
            cancel_blocked(self._tasks + reporting, self.redis),
            cancel_blocked(list(self._jobs), self.redis, grace=JOB_GRACE_SECONDS),
        )
        self._tasks = []
        self._jobs.clear()
        # Threads of sync actions cannot be stopped; they are not waited for either.
        self._threads.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(RedisError):
            await self.queue.unregister(self.worker_id)

    async def drain(
        self,
        seconds: float,
        *,
        hint: str = "signal again to stop now",
        say: Callable[[str], None] = log.info,
    ) -> int:
        """Take no more jobs and let the running ones finish, for up to `seconds`.

        Returns at once when no job runs (or `seconds` is 0), else when the last one is
        reported or the time is up; returns how many still run, which `stop` hands back.
        Cancelling it only ends the wait. `say` gets a line at the start and at the end.
        """
        self._draining = True
        running = self._unreported
        if running == 0:
            return 0
        if seconds <= 0:
            say(f"{running} running jobs go back to their queues")
            return running
        say(f"draining {running} running jobs for up to {seconds:g}s; {hint}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_reported.wait(), seconds)
        left = self._unreported
        if left:
            say(f"drain time up: {left} of {running} jobs still running go back to their queues")
        else:
            say(f"drained: all {running} running jobs finished")
        return left

    @property
    def busy(self) -> int:
        """Slots in use: jobs running or being reported, and threads that outlived theirs.

        Inline jobs whose outcome is on its way count only beyond `worker_count` of them.
        """
        return len(self._jobs) + max(0, self._inline - self.settings.worker_count)

    @property
    def reporting(self) -> int:
        """Jobs of inline actions that have run, their outcome not yet taken by the server."""
        return self._inline

    def _crashed(self, _exc: Exception) -> None:
        self.restarts += 1

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            try:
                # Also registers again: after a server restart without data our
                # registration is gone too.
                settings = self.settings
                await self.queue.heartbeat(
                    self.worker_id, settings.lease_seconds, settings.worker_count, self.busy
                )
                await self._stop_fenced_off()
                await self._release_orphans()
            except RedisError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _release_orphans(self) -> None:
        """Hand back jobs our processing list shows that this process does not hold.

        A server promoted by a failover (or restarted from its AOF) may lack our report of
        a job's end and still show the job as ours; we keep our heartbeat, so no reaper
        would ever take it. An id must show twice in a row: the first time, the reply of
        the fetch that handed it to us may still be on its way.
        """
        listed = await self.queue.held_ids(self.worker_id)
        orphans = listed - self._held
        twice = orphans & self._orphans
        self._orphans = orphans - twice
        if twice:
            handed = await self.queue.release_orphans(self.worker_id, sorted(twice))
            self.orphans_released += handed
            log.warning("handed back %d jobs the server showed as ours but we do not run", handed)

    async def _stop_fenced_off(self) -> None:
        """Stop jobs that are no longer ours: the backstop for a missed cancel message.

        The engine drops a job's fence when it ends the job by hand (cancel, fail), and
        the reaper does when it hands the job to someone else; either way, our outcome
        would be refused, so the work stops.
        """
        leases = list(self._leases.values())
        for lease, ours in zip(leases, await self._still_ours(leases), strict=True):
            job_id = lease.job.job_id
            # Only the lease we looked at: the job may have ended and come back meanwhile.
            if not ours and self._leases.get(job_id) is lease and self.cancel(job_id):
                log.info("job %d is no longer ours; stopped it", job_id)

    async def _still_ours(self, leases: list[Lease]) -> list[bool]:
        """For each lease, whether the job's hash still holds its fence (one round trip)."""
        if not leases:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease in leases:
                job = lease.job
                pipe.hget(keys.job_key(job.circle_id, job.topic, job.job_id), "fence")
            fences = await pipe.execute()
        return [
            (fence.decode() if isinstance(fence, bytes) else fence) == lease.fence
            for lease, fence in zip(leases, fences, strict=True)
        ]

    async def _listen_cancels(self) -> None:
        """Stop the jobs the engine cancels, wherever this watchdog runs.

        While the channel is unreadable, the heartbeat's fence check still stops them.
        """
        await follow_channel(
            lambda: self.redis,
            keys.CANCEL_CHANNEL,
            self._cancel_message,
            read_seconds=CANCEL_READ_SECONDS,
            stopping=lambda: self._stopping,
            subscribed=self._cancels_subscribed,
        )

    def _cancels_subscribed(self) -> None:
        if not self._hearing_cancels.is_set():
            self._hearing_cancels.set()
            return
        if self._stopping:
            return
        # Cancels sent while the channel was down are lost: look for them now rather
        # than at the next heartbeat.
        self._tasks.append(asyncio.create_task(self._sweep_after_resubscribe()))

    async def _sweep_after_resubscribe(self) -> None:
        try:
            await self._stop_fenced_off()
        except RedisError as exc:
            log.warning("checking jobs after subscribing again: %s", exc)

    def _cancel_message(self, data: object) -> None:
        try:
            job_id = int(data) if isinstance(data, bytes | str) else None
        except ValueError:
            return
        if job_id is None:
            return
        if self.cancel(job_id):
            log.info("job %d cancelled by the engine; stopped it", job_id)
            return
        # Maybe ours already, its FETCH reply not yet read: `_execute` looks here.
        self._early_cancels.pop(job_id, None)
        self._early_cancels[job_id] = True
        if len(self._early_cancels) > EARLY_CANCELS_KEPT:
            del self._early_cancels[next(iter(self._early_cancels))]

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

    async def _dispatch(self) -> None:
        """Fetch as many jobs as there are free slots, in one round trip, and start them."""
        backoff = Backoff()
        await self._hearing_cancels.wait()
        # How long the next fetch may wait for the doorbell; 0: it does not wait.
        wait = 0.0
        while not self._stopping and not self._draining:
            try:
                free = self.settings.worker_count - self.busy
                if free <= 0:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                    continue
                if wait and self._reporter.flushing:
                    # The report of what just ran goes out before the blocking fetch.
                    await asyncio.sleep(0)
                fetched = await self.queue.fetch(self.worker_id, free, wait)
                self._held.update(lease.job.job_id for lease in fetched.leases)
                backoff.reset()
                wait = 0.0
                if fetched.leases:
                    self._unreported += len(fetched.leases)
                    self._all_reported.clear()
                    await self._start_all(fetched.leases)
                    if len(fetched.leases) >= free:
                        continue
                # Fewer than asked: every queue was empty or held, and FETCH cleared the
                # doorbell in the same atomic step, so the next enqueue (or the end of a
                # held queue's job) rings it. The next fetch goes out behind a blocking
                # pop of the doorbell: the server runs it when the bell rings, and one
                # round trip brings the jobs. A queue held by its rate wakes no one when
                # it may go on: wait no longer than that.
                wait = min(fetched.retry_in or IDLE_BLOCK_SECONDS, IDLE_BLOCK_SECONDS)
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                wait = 0.0
                level = logging.WARNING if isinstance(exc, RedisConnectionError) else logging.ERROR
                log.log(level, "fetching jobs: %s; retrying", exc)
                await backoff.wait()

    async def _start_all(self, leases: list[Lease]) -> None:
        """Start a fetched batch, giving the loop back whenever inline jobs held it long."""
        loop = asyncio.get_running_loop()
        since = loop.time()
        for lease in leases:
            self._start(lease)
            if loop.time() - since > INLINE_BUDGET_SECONDS:
                await asyncio.sleep(0)
                since = loop.time()

    def _start(self, lease: Lease) -> None:
        """Run a job: here and now when every action is inline, else in a task of its own."""
        try:
            playbook = self.processors.plan(lease.job)
            # A cancel that came before its FETCH reply is checked in the job's task.
            inline = (
                playbook is not None
                and lease.job.job_id not in self._early_cancels
                and self.processors.all_inline(playbook)
            )
        except Exception:
            # Whatever went wrong, the job's task meets it again and reports it.
            playbook, inline = None, False
        if playbook is not None and inline:
            self._run_inline(lease, playbook)
        else:
            self._spawn(self._run(lease, playbook), lease)

    def _spawn(self, work: Coroutine[Any, Any, None], lease: Lease) -> None:
        task = asyncio.create_task(work, name=f"job-{lease.job.job_id}")
        self._jobs.add(task)
        task.add_done_callback(self._job_finished)

    def _job_finished(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("reporting a job failed: %s", task.exception())

    def _context(
        self, lease: Lease, *, inline_run: bool = False
    ) -> tuple[deque[str], _JobProgress, ActionContext]:
        job = lease.job
        lines: deque[str] = deque(maxlen=MAX_LOG_LINES)
        progress = _JobProgress(self, lease)
        ctx = ActionContext(
            job_id=job.job_id,
            log=self._logger(job.job_id, job.log, lines),
            executor=self._threads,
            report=progress,
            inline_run=inline_run,
        )
        return lines, progress, ctx

    async def _run(self, lease: Lease, playbook: Playbook | None) -> None:
        job = lease.job
        lines, progress, ctx = self._context(lease)
        task = asyncio.create_task(self._execute(lease, ctx, playbook))
        self.running[job.job_id] = task
        self._leases[job.job_id] = lease
        loop = asyncio.get_running_loop()
        started = loop.call_later(REPORT_ACTIVE_AFTER_SECONDS, self._report_started, lease)
        try:
            outcome = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the pool is stopping: the job goes back to its queue
            outcome = Outcome(JobStatus.ERROR, error="cancelled", kind=ErrorKind.CANCELLED)
        finally:
            started.cancel()
            self.running.pop(job.job_id, None)
            self._leases.pop(job.job_id, None)
        await self._finish(lease, outcome, lines, progress, ctx)

    def _report_started(self, lease: Lease) -> None:
        """Queue a running job's `active` version; the jobs due together go in one call."""
        self._started.append(lease)
        if self._reporting_started is None:
            self._reporting_started = asyncio.create_task(self._send_started())

    async def _send_started(self) -> None:
        try:
            while self._started:
                batch, self._started = self._started, []
                try:
                    await self.queue.report_started(batch)
                except (RedisError, OSError) as exc:
                    # Not lost: the job's end carries it, or the hand-back of the job does.
                    log.info("reporting %d running job(s) as active: %s", len(batch), exc)
        finally:
            self._reporting_started = None

    def _run_inline(self, lease: Lease, playbook: Playbook) -> None:
        """Run a job of inline actions to its end now, and hand its outcome to the reporter.

        No task and no thread: the batch a fetch brought goes through in one step of the
        loop, and its outcomes leave in one report. Nothing can cancel it meanwhile (the
        loop is busy with it); a cancel that comes later finds its fence gone.
        """
        job = lease.job
        lines, progress, ctx = self._context(lease, inline_run=True)
        started = asyncio.get_running_loop().time()
        try:
            outcome = run_now(self.processors.play(playbook, ctx))
        except Exception as exc:
            outcome = _crashed(job, exc)
        else:
            # The calls could not be interrupted: an outcome past the deadline is too late.
            if asyncio.get_running_loop().time() - started > job.timeout:
                outcome = _timed_out(job, ctx)
        if not progress.close_now():
            # Its last progress is still being written: the outcome must land after it.
            self._spawn(self._finish(lease, outcome, lines, progress, ctx), lease)
            return
        self._inline += 1
        future = self._reporter.submit(completion(lease, outcome, tuple(lines)))
        future.add_done_callback(functools.partial(self._inline_reported, lease))

    def _inline_reported(self, lease: Lease, future: asyncio.Future[bool]) -> None:
        self._inline -= 1
        self._slot_freed.set()
        try:
            if future.cancelled():
                return
            exc = future.exception()
            if exc is None:
                self._recorded(lease, future.result())
            elif not isinstance(exc, RedisError | OSError):
                log.error("reporting a job failed: %s", exc)
        finally:
            self._settled(lease)

    async def _finish(
        self,
        lease: Lease,
        outcome: Outcome,
        lines: deque[str],
        progress: _JobProgress,
        ctx: ActionContext,
    ) -> None:
        try:
            # On the hash before the outcome, so the final version keeps the last value.
            await progress.close()
            await self._report(completion(lease, outcome, tuple(lines)))
        finally:
            self._settled(lease)
            await self._hold_slot(ctx)

    def _settled(self, lease: Lease) -> None:
        """A job fetched here is reported (or given up at stop): the drain counts it."""
        self._held.discard(lease.job.job_id)
        self._unreported -= 1
        if self._unreported == 0:
            self._all_reported.set()

    async def _hold_slot(self, ctx: ActionContext) -> None:
        """Keep the slot until threads that outlived the job end: `worker_count` holds."""
        unfinished = [future for future in ctx.unfinished if not future.done()]
        if not unfinished:
            return
        self.abandoned += 1
        try:
            await asyncio.wait(unfinished)
        finally:
            self.abandoned -= 1

    async def _report(self, done: Completion) -> None:
        try:
            recorded = await self._reporter.report(done)
        except (RedisError, OSError):
            return  # the pool is stopping: the job goes back to its queue
        self._recorded(done.lease, recorded)

    def _recorded(self, lease: Lease, recorded: bool) -> None:
        if recorded:
            self.completed += 1
        else:
            log.info("job %d was handed to another worker; outcome dropped", lease.job.job_id)

    async def _execute(
        self, lease: Lease, ctx: ActionContext, playbook: Playbook | None
    ) -> Outcome:
        job = lease.job
        # `running` holds this job now, so later cancels find it; an earlier one is here.
        if self._early_cancels.pop(job.job_id, False) and not await self._ours(lease):
            return Outcome(JobStatus.ERROR, error="cancelled", kind=ErrorKind.CANCELLED)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + job.timeout
        try:
            async with asyncio.timeout(job.timeout):
                outcome = await self.processors.run(job, ctx, playbook)
        except TimeoutError:
            return _timed_out(job, ctx)
        except Exception as exc:
            return _crashed(job, exc)
        # An inline action cannot be interrupted: one that ran past the deadline without
        # giving the loop back returns too late, and its job still ends in a timeout.
        if loop.time() > deadline:
            return _timed_out(job, ctx)
        return outcome

    async def _ours(self, lease: Lease) -> bool:
        """Whether the lease still holds; True when Redis cannot say (the heartbeat will)."""
        try:
            return (await self._still_ours([lease]))[0]
        except RedisError as exc:
            log.warning("checking job %d after an early cancel: %s", lease.job.job_id, exc)
            return True

    def cancel(self, job_id: int) -> bool:
        """Cancel a job running here; False when it is not running here."""
        task = self.running.get(job_id)
        if task is None:
            return False
        task.cancel()
        return True

    def _logger(self, job_id: int, keep: bool, lines: deque[str]) -> _JobLog:
        return _JobLog(self, job_id, keep, lines)


def run_now(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, here, in a copy of the context.

    A job of inline actions is one: it awaits nothing that waits. Should it suspend
    all the same, it is closed and this raises rather than leave it half run.
    """
    try:
        contextvars.copy_context().run(work.send, None)
    except StopIteration as done:
        result: T = done.value
        return result
    work.close()
    raise RuntimeError("a job of inline actions waited for something")


def _timed_out(job: Job, ctx: ActionContext) -> Outcome:
    ctx.cancelled.set()
    return Outcome(JobStatus.ERROR, error=f"timeout after {job.timeout:g}s", kind=ErrorKind.TIMEOUT)


def _crashed(job: Job, exc: Exception) -> Outcome:
    log.error("job %d crashed its processor", job.job_id, exc_info=exc)
    return Outcome(JobStatus.ERROR, error=f"{type(exc).__name__}: {exc}")


def completion(lease: Lease, outcome: Outcome, lines: tuple[str, ...]) -> Completion:
    """The report of one attempt: an error with a retry left becomes `scheduled`.

    The attempt's error and kind stay on the scheduled version, so the job's history
    shows each failed attempt and, in `run_at`, when the next one starts.
    """
    job = lease.job
    if outcome.status is not JobStatus.ERROR:
        return Completion(lease, outcome.status, outcome.result, outcome.error, lines)
    kind = outcome.kind or ErrorKind.FAILED
    if not outcome.no_retry and should_retry(job, kind):
        if outcome.retry_after is not None:
            delay = outcome.retry_after
        else:
            delay = backoff_delay(job, job.attempts)
        return Completion(
            lease,
            JobStatus.SCHEDULED,
            outcome.result,
            outcome.error,
            lines,
            error_kind=kind,
            retry_delay=delay,
        )
    return Completion(lease, JobStatus.ERROR, outcome.result, outcome.error, lines, error_kind=kind)


class Reporter:
    """Sends the outcomes that finish close together in one round trip (group commit).

    The first outcome starts a flush; outcomes that arrive while it is on the wire wait
    for the next one, so the batch grows with the load and a lone job waits for nothing.
    A flush the server did not take is tried again (with the outcomes that arrived
    meanwhile) until it is, or until `stopping` says the pool stops.
    """

    def __init__(self, queue: JobQueue, stopping: Callable[[], bool] = lambda: False) -> None:
        self.queue = queue
        self.stopping = stopping
        self._waiting: list[tuple[Completion, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def submit(self, done: Completion) -> asyncio.Future[bool]:
        """Queue one outcome; the future says whether it was recorded (False: fenced off).

        It fails with the Redis error only when the pool stopped before the server took it.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((done, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return future

    async def report(self, done: Completion) -> bool:
        """Record one outcome; False when it was fenced off."""
        return await self.submit(done)

    @property
    def flushing(self) -> bool:
        """Whether a flush is under way (or about to start)."""
        return self._flushing is not None and not self._flushing.done()

    async def _flush(self) -> None:
        backoff = Backoff()
        batch: list[tuple[Completion, asyncio.Future[bool]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    recorded = await self.queue.complete_many([done for done, _ in batch])
                except (RedisError, OSError) as exc:
                    if self.stopping():
                        _fail(batch, exc)
                        continue
                    # An unreported job would sit in our processing list while our
                    # heartbeat says we are alive: keep trying. A server that lost its
                    # data fences the report off, and the rebuilt queue runs the job again.
                    log.warning("reporting %d jobs: %s; retrying", len(batch), exc)
                    self._waiting = batch + self._waiting
                    await backoff.wait()
                    continue
                except Exception as exc:
                    _fail(batch, exc)
                    continue
                backoff.reset()
                for (_, future), ok in zip(batch, recorded, strict=True):
                    if not future.done():
                        future.set_result(ok)
        except BaseException as exc:
            # Cancelled (the loop is closing): no outcome may wait for ever on a flush.
            waiting, self._waiting = self._waiting, []
            _fail(batch + waiting, exc)
            raise


def _fail(batch: list[tuple[Completion, asyncio.Future[bool]]], exc: BaseException) -> None:
    for _, future in batch:
        if future.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)


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
            async with self.dog.redis.pipeline(transaction=False) as pipe:
                for line in lines:
                    pipe.publish(keys.EVENTS_CHANNEL, json.dumps(job_log_wire(self.job_id, line)))
                try:
                    await pipe.execute()
                except (RedisError, OSError) as exc:  # pub/sub is best effort
                    log.debug("log lines of job %d not published: %s", self.job_id, exc)


class _JobProgress:
    """The `report` of an action: progress as events and on the job's hash, rate-bounded.

    At most one report goes out per `PROGRESS_SECONDS`; reports in between only replace
    the one held back, which goes out when its time comes (or at `close`), so the last
    value always arrives. Sync actions call it from worker threads, so it hops onto the
    loop first.
    """

    def __init__(self, dog: WatchDog, lease: Lease) -> None:
        self.dog = dog
        self.lease = lease
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self._held: tuple[float, str] | None = None
        self._sent_at = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        # One writer at a time; it writes the newest value when it comes round again.
        self._unwritten: tuple[float, str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    def __call__(self, fraction: float, message: str) -> None:
        if threading.get_ident() != self.loop_thread:
            self.loop.call_soon_threadsafe(self, fraction, message)
            return
        if self._closed:
            return  # a thread that outlived its job
        self._held = (fraction, message)
        if self._timer is not None:
            return
        wait = self._sent_at + PROGRESS_SECONDS - self.loop.time()
        if wait <= 0:
            self._send()
        else:
            self._timer = self.loop.call_later(wait, self._send)

    def _send(self) -> None:
        self._timer = None
        if self._held is None:
            return
        fraction, message = self._held
        self._held = None
        self._sent_at = self.loop.time()
        if self.dog.bus is not None:
            job_id = self.lease.job.job_id
            self.dog.bus.publish(JobProgress(job_id=job_id, fraction=fraction, message=message))
        self._unwritten = (fraction, message)
        if self._writer is None or self._writer.done():
            self._writer = self.loop.create_task(self._write())

    async def _write(self) -> None:
        while self._unwritten is not None:
            fraction, message = self._unwritten
            self._unwritten = None
            try:
                await self.dog.queue.report_progress(self.lease, fraction, message)
            except (RedisError, OSError) as exc:  # progress is best effort, like log lines
                log.debug("progress of job %d not written: %s", self.lease.job.job_id, exc)

    def close_now(self) -> bool:
        """Send the report held back, if any; True when nothing is left to write."""
        if self._timer is not None:
            self._timer.cancel()
        self._send()
        self._closed = True
        return self._writer is None or self._writer.done()

    async def close(self) -> None:
        """Send the report held back, if any, and wait until it is on the job's hash."""
        if not self.close_now() and self._writer is not None:
            await self._writer
