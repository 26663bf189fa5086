"""JobQueue: the Redis side of jobs, shared by the engine and every watchdog."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from core import __version__
from core.events import job_progress_wire
from core.jobs import keys, scripts
from core.jobs.model import Job, JobStatus, compact_json, encoded, hash_strings

# The ENQUEUE place of a job waiting for its parents: neither a queue nor the time set.
HELD = "-"
# How long a lost watchdog's record stays after its lease ran out, so people see it.
WORKER_LINGER_SECONDS = 300.0
_HOST = socket.gethostname()


@dataclass(frozen=True)
class Completion:
    """The outcome of one leased job, as a worker reports it."""

    lease: Lease
    status: JobStatus
    result: str = ""
    error: str = ""
    log_lines: tuple[str, ...] = ()
    # Why an error attempt failed (an ErrorKind value), and for `scheduled` how long until
    # it reruns (counted from the time_end the report is stamped with).
    error_kind: str = ""
    retry_delay: float = 0.0


@dataclass(frozen=True)
class WorkerRecord:
    """What the server holds of one watchdog: its lease, its record, its processing list.

    Times are the server's (seconds); 0 where the record is gone (a worker lost long
    ago, or one older than records, that still holds jobs).
    """

    worker: str
    alive: bool
    held: int
    host: str
    pid: int
    slots: int
    busy: int
    started: float
    heartbeat: float
    lease_seconds: float
    version: str

    @classmethod
    def of(cls, worker: str, alive: bool, fields: dict[str, str], held: int) -> WorkerRecord:
        """From a record hash's fields; a field that does not parse reads as its zero."""
        return cls(
            worker=worker,
            alive=alive,
            held=held,
            host=fields.get("host", "")[:255],
            pid=int(_number(fields.get("pid"))),
            slots=int(_number(fields.get("slots"))),
            busy=int(_number(fields.get("busy"))),
            started=_number(fields.get("started")),
            heartbeat=_number(fields.get("heartbeat")),
            lease_seconds=_number(fields.get("lease_ms")) / 1000,
            version=fields.get("version", "")[:64],
        )


def _number(text: str | None) -> float:
    """A record field as a number; another version's or a damaged field reads as 0."""
    if text is None or len(text) > 32:
        return 0.0
    try:
        number = float(text)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


@dataclass(frozen=True)
class Fetched:
    """What one fetch handed out, and how long until a rate-held queue may start again."""

    leases: list[Lease]
    # Seconds; 0 when no queue is held by its rate (only the doorbell wakes a worker then).
    retry_in: float = 0.0


@dataclass(frozen=True)
class Lease:
    """A job handed to one watchdog; the fence proves it is still that watchdog's."""

    job: Job
    fence: str
    worker: str


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: Sequence[bytes | str]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def job_of_reply(flat: list[Any]) -> Job:
    """A job from a script's flat HGETALL reply: bytes parse as a stream entry does.

    Every fetch reads a whole batch of hashes: decoding each field to str first cost
    more than the rest of the fetch on the client. A client made with
    `decode_responses` hands str, which takes the slower path.
    """
    if flat and isinstance(flat[0], bytes):
        return Job.from_stream(dict(zip(flat[::2], flat[1::2], strict=True)))
    return Job.from_hash(_pairs(flat))


def _fetched(reply: list[Any], worker: str) -> Fetched:
    """What FETCH replied (see scripts.FETCH), as leases."""
    leases = []
    at = 1
    while at < len(reply):
        fence = _text(reply[at + 2])
        width = int(reply[at + 3])
        flat = reply[at + 4 : at + 4 + width]
        leases.append(Lease(job_of_reply(flat), fence, worker))
        at += 4 + width
    return Fetched(leases, float(reply[0]))


class JobQueue:
    """Enqueue, hand out, complete and reclaim jobs with one round trip each."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._enqueue = redis.register_script(scripts.ENQUEUE)
        self._fetch = redis.register_script(scripts.FETCH)
        self._complete = redis.register_script(scripts.COMPLETE)
        self._reap = redis.register_script(scripts.REAP)
        self._release_orphans = redis.register_script(scripts.RELEASE_ORPHANS)
        self._promote = redis.register_script(scripts.PROMOTE)
        self._progress = redis.register_script(scripts.PROGRESS)
        self._started = redis.register_script(scripts.STARTED)
        self._heartbeat = redis.register_script(scripts.HEARTBEAT)
        self._set_limits = redis.register_script(scripts.SET_LIMITS)
        self._raise_revision = redis.register_script(scripts.RAISE_REVISION)

    async def enqueue(
        self,
        jobs: Iterable[Job],
        events: bytes = b"",
        items: list[list[Any]] | None = None,
        *,
        restore: bool = False,
    ) -> None:
        """Store jobs and queue them, all in one atomic script call.

        A `scheduled` job goes into the scheduled set at its `run_at` instead of a queue,
        and rings the promoter's bell so it wakes if this one is due sooner. `events`, a
        message for the events channel, is published by the same call once they are in.
        `items` are the jobs' `enqueue_items`, when the caller made them already. With
        `restore` (jobs queued again from their stored versions), a job whose hash the
        server holds is left as it is: something changed it since the caller read it.
        """
        jobs = list(jobs)
        if not jobs:
            return
        if items is None:
            items = await encoded(len(jobs), lambda: enqueue_items(jobs))
        if restore:
            items = [[*item, "1"] for item in items]
        fixed = [
            *(keys.JOB_LOCATION, keys.QUEUES, keys.DOORBELL, keys.SCHEDULED),
            *(keys.SCHEDULE_BELL, keys.LAST_ID),
        ]
        args: list[Any] = [orjson.dumps(items), orjson.dumps([str(job.job_id) for job in jobs])]
        if events:
            args += [keys.EVENTS_CHANNEL, events]
        await self._enqueue(keys=fixed, args=args)

    async def fetch_many(self, worker: str, count: int) -> list[Lease]:
        """Move up to `count` jobs, across the queues in turn, into the processing list."""
        return (await self.fetch(worker, count)).leases

    async def fetch(self, worker: str, count: int, wait: float = 0.0) -> Fetched:
        """As `fetch_many`, with the time until a queue held by its rate may start again.

        With `wait` (seconds), the FETCH goes out behind a blocking pop of the doorbell,
        in one round trip: the server runs it the moment an enqueue rings (or `wait`
        passes), so an idle worker's pickup costs no second round trip after its wake-up.
        Its jobs' `time_start` is then the server's clock at that moment.
        """
        fetch_keys = [
            keys.QUEUES,
            keys.DOORBELL,
            keys.ROUND_ROBIN,
            keys.FENCE,
            keys.PAUSED,
            keys.processing_key(worker),
            keys.LIMITS,
            keys.RATE_NEXT,
            keys.LEVELS,
        ]
        args: list[Any] = [worker, repr(time.time()), count]
        if wait <= 0:
            return _fetched(await self._fetch(keys=fetch_keys, args=args), worker)
        args.append("server")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.blpop([keys.DOORBELL], timeout=wait)
            pipe.evalsha(self._fetch.sha, len(fetch_keys), *fetch_keys, *args)
            _, reply = await pipe.execute(raise_on_error=False)
        if isinstance(reply, NoScriptError):
            # The server lost its scripts (a restart, SCRIPT FLUSH): load it and fetch now,
            # whether or not the pop was rung (a FETCH that finds nothing costs little).
            reply = await self._fetch(keys=fetch_keys, args=args[:3])
        elif isinstance(reply, Exception):
            raise reply
        return _fetched(reply, worker)

    async def wait_for_work(self, seconds: float) -> bool:
        """Block on the server until a job is enqueued (True) or `seconds` pass (False)."""
        return await self.redis.blpop([keys.DOORBELL], timeout=seconds) is not None

    async def ring(self) -> None:
        """Put back one wake-up token, taken by a worker that will not fetch after all."""
        await self.redis.rpush(keys.DOORBELL, 1)

    async def complete_many(self, outcomes: Sequence[Completion]) -> list[bool]:
        """Record many outcomes in one script call; each is fenced on its own."""
        if not outcomes:
            return []
        stamp = time.time()
        now = repr(stamp)
        batch = []
        for done in outcomes:
            job = done.lease.job
            batch.append(
                (
                    (
                        keys.job_key(job.circle_id, job.topic, job.job_id),
                        keys.processing_key(done.lease.worker),
                        keys.STREAM,
                        keys.SCHEDULED,
                        keys.SCHEDULE_BELL,
                        keys.active_key(job.queue),
                        keys.DOORBELL,
                    ),
                    (
                        str(job.job_id),
                        done.lease.fence,
                        done.status.value,
                        done.result,
                        done.error,
                        now,
                        compact_json(done.log_lines).decode(),
                        done.error_kind,
                        repr(stamp + done.retry_delay),
                    ),
                )
            )
        recorded = await self._complete(keys=[], args=[compact_json(batch)])
        return [bool(one) for one in recorded]

    async def report_started(self, leases: Sequence[Lease]) -> int:
        """Report the `active` version of running jobs not reported yet; how many it did.

        A job's end carries that version when it comes first (see `scripts.STARTED`).
        """
        if not leases:
            return 0
        jobs = [
            (keys.job_key(lease.job.circle_id, lease.job.topic, lease.job.job_id), lease.fence)
            for lease in leases
        ]
        return int(await self._started(keys=[keys.STREAM], args=[compact_json(jobs)]))

    async def report_progress(self, lease: Lease, fraction: float, message: str) -> bool:
        """Keep a running job's progress on its hash and publish it; False when fenced off."""
        job = lease.job
        wire = json.dumps(job_progress_wire(job.job_id, fraction, message))
        recorded = await self._progress(
            keys=[keys.job_key(job.circle_id, job.topic, job.job_id)],
            args=[lease.fence, repr(fraction), message, keys.EVENTS_CHANNEL, wire],
        )
        return bool(recorded)

    async def promote_due(self, limit: int = 1_000) -> tuple[int, float | None]:
        """Queue up to `limit` due scheduled jobs; returns how many, and the next due time."""
        moved, first = await self._promote(
            keys=[keys.SCHEDULED, keys.JOB_LOCATION, keys.DOORBELL, keys.SCHEDULE_BELL],
            args=[repr(time.time()), limit],
        )
        return int(moved), (float(_text(first)) if first is not None else None)

    async def register(self, worker: str, lease_seconds: float, slots: int) -> None:
        """Announce a watchdog, start its lease and write its record."""
        await self.heartbeat(worker, lease_seconds, slots, 0)

    async def heartbeat(self, worker: str, lease_seconds: float, slots: int, busy: int) -> None:
        """Renew a watchdog's lease, its registration and its record, in one call.

        The record outlives the lease by `WORKER_LINGER_SECONDS`, so a lost worker stays
        in sight that long.
        """
        lease_ms = int(lease_seconds * 1000)
        await self._heartbeat(
            keys=[
                keys.heartbeat_key(worker),
                keys.WORKERS,
                keys.worker_key(worker),
                keys.WORKER_RECORDS,
            ],
            args=[
                worker,
                lease_ms,
                lease_ms + int(WORKER_LINGER_SECONDS * 1000),
                _HOST,
                os.getpid(),
                slots,
                busy,
                __version__,
            ],
        )

    async def unregister(self, worker: str) -> None:
        """A watchdog leaving cleanly: whatever it still holds goes back at once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.heartbeat_key(worker), keys.worker_key(worker))
            pipe.srem(keys.WORKER_RECORDS, worker)
            await pipe.execute()
        await self.reap_worker(worker, max_attempts=1_000_000)

    async def workers(self) -> tuple[float, list[WorkerRecord]]:
        """The server's time and every watchdog with a record or jobs held, by id.

        Two round trips whatever the count: the ids, then each one's lease, record and
        processing list. Ids whose record expired and who hold nothing are dropped from
        the record set here, so it never grows.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.WORKER_RECORDS)
            pipe.smembers(keys.WORKERS)
            recorded, registered = await pipe.execute()
        ids = sorted({_text(i) for i in recorded} | {_text(i) for i in registered})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            for worker in ids:
                pipe.exists(keys.heartbeat_key(worker))
                pipe.hgetall(keys.worker_key(worker))
                pipe.llen(keys.processing_key(worker))
            replies = await pipe.execute()
        seconds, micros = replies[0]
        now = seconds + micros / 1e6
        found: list[WorkerRecord] = []
        gone: list[str] = []
        for n, worker in enumerate(ids):
            alive, record, held = replies[1 + 3 * n : 4 + 3 * n]
            fields = {_text(k): _text(v) for k, v in record.items()}
            if not alive and not fields and not held:
                gone.append(worker)
                continue
            found.append(WorkerRecord.of(worker, bool(alive), fields, int(held)))
        if gone:
            await self.redis.srem(keys.WORKER_RECORDS, *gone)
        return now, found

    async def reap_worker(self, worker: str, max_attempts: int) -> int:
        """Hand back the jobs of a watchdog whose lease ran out; -1 if it is alive."""
        return int(
            await self._reap(
                keys=[
                    keys.heartbeat_key(worker),
                    keys.processing_key(worker),
                    keys.WORKERS,
                    keys.JOB_LOCATION,
                    keys.DOORBELL,
                    keys.STREAM,
                ],
                args=[worker, max_attempts, repr(time.time())],
            )
        )

    async def held_ids(self, worker: str) -> set[int]:
        """The ids a watchdog's processing list holds."""
        return {int(i) for i in await self.redis.lrange(keys.processing_key(worker), 0, -1)}

    async def release_orphans(self, worker: str, job_ids: Sequence[int]) -> int:
        """Hand back jobs a live watchdog's list shows but it does not run; how many went."""
        if not job_ids:
            return 0
        return int(
            await self._release_orphans(
                keys=[
                    keys.processing_key(worker),
                    keys.JOB_LOCATION,
                    keys.DOORBELL,
                    keys.STREAM,
                ],
                args=[worker, repr(time.time()), *(str(i) for i in job_ids)],
            )
        )

    async def reap(self, max_attempts: int) -> int:
        """Reclaim the jobs of every dead watchdog; returns how many were handled."""
        handled = 0
        for worker in await self.redis.smembers(keys.WORKERS):
            handled += max(0, await self.reap_worker(_text(worker), max_attempts))
        return handled

    async def get_live(self, job_id: int) -> Job | None:
        """The job from Redis, if it is still live there."""
        queue = await self.redis.hget(keys.JOB_LOCATION, str(job_id))
        if queue is None:
            return None
        raw = await self.redis.hgetall(f"{keys.JOB_PREFIX}:{_text(queue)}:{job_id}")
        return Job.from_hash(raw) if raw else None

    async def get_live_many(self, job_ids: Sequence[int]) -> dict[int, Job]:
        """The live ones among these jobs, in two round trips whatever their number."""
        if not job_ids:
            return {}
        places = await self.redis.hmget(keys.JOB_LOCATION, [str(i) for i in job_ids])
        live = [(i, _text(q)) for i, q in zip(job_ids, places, strict=True) if q is not None]
        if not live:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id, queue in live:
                pipe.hgetall(f"{keys.JOB_PREFIX}:{queue}:{job_id}")
            hashes = await pipe.execute()

        def decode() -> dict[int, Job]:
            return {
                job_id: Job.from_hash(raw)
                for (job_id, _), raw in zip(live, hashes, strict=True)
                if raw
            }

        # A list's page (hundreds of live jobs at full flow) is decoded off the loop.
        return await encoded(len(live), decode)

    async def raise_revisions(self, jobs: Sequence[Job]) -> int:
        """Raise each live job's revision to at least the given version's; how many rose."""
        if not jobs:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                await self._raise_revision(
                    keys=[keys.job_key(job.circle_id, job.topic, job.job_id)],
                    args=[job.revision],
                    client=pipe,
                )
            return sum(int(raised) for raised in await pipe.execute())

    async def depths(self) -> dict[str, int]:
        """Waiting jobs per "<circle>:<topic>" queue, at every priority level."""
        names = sorted(_text(q) for q in await self.redis.smembers(keys.QUEUES))
        levels = sorted(int(p) for p in await self.redis.smembers(keys.LEVELS))
        async with self.redis.pipeline(transaction=False) as pipe:
            for level in levels:
                pipe.smembers(keys.level_queues_key(level))
            at_levels = await pipe.execute()
        lists = [(name, f"{keys.QUEUE_PREFIX}:{name}") for name in names]
        for level, members in zip(levels, at_levels, strict=True):
            lists += [(_text(q), f"{keys.QUEUE_PREFIX}:{_text(q)}:p{level}") for q in members]
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, key in lists:
                pipe.llen(key)
            lengths = await pipe.execute()
        depths = dict.fromkeys(names, 0)
        for (name, _), length in zip(lists, lengths, strict=True):
            depths[name] = depths.get(name, 0) + int(length)
        return depths

    async def waiting(self, circle: str, topic: str) -> int:
        """Jobs waiting in one queue, at every priority level."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for level in range(keys.MAX_PRIORITY + 1):
                pipe.llen(keys.queue_key(circle, topic, level))
            return sum(int(n) for n in await pipe.execute())

    async def set_limits(self, queue: str, limits: str) -> int:
        """Set one queue's limits (JSON; '' clears them); returns its active jobs now."""
        return int(
            await self._set_limits(
                keys=[
                    keys.LIMITS,
                    keys.WORKERS,
                    keys.JOB_LOCATION,
                    keys.DOORBELL,
                    keys.RATE_NEXT,
                ],
                args=[queue, limits],
            )
        )


def enqueue_items(
    jobs: Sequence[Job], fields: Sequence[Mapping[str, Any]] | None = None
) -> list[list[Any]]:
    """The ENQUEUE script's item of each job: its hash but for the id, and where it goes.

    Nothing in it depends on the id, so a batch's items are made before OurDB gives ids.
    `fields` are the jobs' `set_fields()`, when the caller has them already.
    """
    items: list[list[Any]] = []
    for job, set_fields in zip(jobs, fields or [job.set_fields() for job in jobs], strict=True):
        if job.waiting:
            place = HELD  # released by its parents' ends, not by a time
        elif job.status is JobStatus.SCHEDULED:
            place = ""
        else:
            place = "1"
        hashed = hash_strings(set_fields)
        # The revision ENQUEUE takes: its hash is written afresh, so it is this one.
        hashed["revision"] = str(job.revision + 1)
        items.append([hashed, job.queue, place, repr(job.run_at), str(job.priority)])
    return items
