"""JobManager: create, read, list and end jobs; the only writer of the job history (OurDB)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack

import orjson
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from core.config import QueueConfig, check_limits, check_priority, parse_rate
from core.events import PROCESS_ORIGIN, JobFilter, JobSpec, JobStateChanged, LimitsView
from core.events.bus import EventBus
from core.jobs import keys, scripts
from core.jobs.index import JobIndex
from core.jobs.model import (
    BACKOFFS,
    DEAD_KINDS,
    DEFAULT_RETRY_ON,
    NAME_PATTERN,
    ErrorKind,
    Job,
    JobStatus,
    ParamsType,
    damaged_job,
    encoded,
    is_damaged,
)
from core.jobs.queue import JobQueue, enqueue_items, job_of_reply
from core.ourdb import AsyncOurDB, CorruptRecordError, InvalidIdError, RecordNotFoundError
from core.redis_server.backoff import Backoff

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# OurDB refuses records over 64 KiB; params must leave room for the rest of the job.
MAX_PARAMS_BYTES = 48 * 1024
MAX_RECORD_BYTES = 65_535
MAX_LOG_LINES = 200
HISTORY_DEPTH = 1_000
# How far back a batch drained again after a crash looks for versions it stored already.
RECENT_RECORDS = 8
# Params up to this size are checked on the loop (microseconds); larger ones in a thread.
INLINE_CHECK_CHARS = 4_096
# Unique keys become part of a Redis key: a safe alphabet, and a bound on their length.
UNIQUE_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:/@=+-]{1,200}$")
MAX_UNIQUE_FOR = 366 * 24 * 3600.0
MAX_PARENTS = 100
ON_PARENT_ERROR = ("fail", "run")
# A submit's placeholder on a unique key lives this long: a submitter that dies between
# its claim and its OurDB write holds the key no longer than this.
CLAIM_TTL_MS = 30_000
# How long a submit waits for another one's claim on the same key to turn into a job id.
CLAIM_WAIT_SECONDS = 10.0
CLAIM_POLL_SECONDS = 0.005
PLACEHOLDER = "pending:"


class JobError(ValueError):
    """A job request was refused; the message says what and where.

    `kind` names the refusal for front ends (the engine API maps it to its typed errors:
    refused, not_found, ended, not_ended);
    `line` and `col` point into the params when the problem is there (0 when not).
    """

    kind = "refused"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        line: int = 0,
        col: int = 0,
        problems: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind or self.kind
        self.line = line
        self.col = col
        # Every problem found in the params (HeroScript diagnostics), first one first.
        self.problems = tuple(problems)
        # The refused item's place in a batch (None outside a batch).
        self.index: int | None = None


class JobNotFoundError(JobError, LookupError):
    """No job has this id."""

    kind = "not_found"


Validator = Callable[[ParamsType, str], None]


@dataclass(frozen=True)
class _Origin:
    """Where new jobs come from, set by the engine, never by the caller's spec."""

    session_key: str | None = None
    schedule: str = ""
    fire_time: float = 0.0


class PersistOptions(TypedDict, total=False):
    """The options of `JobManager.persist` (see `persist_durably`)."""

    skip_duplicates: bool
    acknowledge: Sequence[bytes | str]
    after_end: bool
    on_handed: Callable[[], object] | None


class OriginOptions(TypedDict, total=False):
    """`_Origin`'s fields as the keywords of `submit_jobs`, for calls that pass them on."""

    session_key: str | None
    schedule: str
    fire_time: float


# What a batch's items' settings came to (see JobManager._check), by those settings.
_CheckMemo = dict[tuple[Any, ...], tuple[ParamsType, dict[str, Any]]]
# The links of a job with no unique key, parents or name (what `_links` gives it).
_NO_LINKS: dict[str, Any] = {"unique_key": "", "unique_for": 0.0, "on_parent_error": "", "name": ""}
# A job's fields made fresh for each job (its lists): a checked item's job copies the
# settings' job, and must not share these with the other items of its batch.
_FRESH_FIELDS = tuple(
    (f.name, f.default_factory) for f in fields(Job) if f.default_factory is not MISSING
)
# A single submit waiting for its batch: its spec, its origin, its caller's answer.
_PendingSubmit = tuple[JobSpec, _Origin, "asyncio.Future[tuple[Job, bool]]"]


async def _checked(specs: Sequence[JobSpec], check: Callable[[], _T]) -> _T:
    """Run a batch's checks, in a thread when its params are long enough to take a while."""
    if sum(len(spec.params) for spec in specs) > INLINE_CHECK_CHARS:
        # Parsing a large text takes milliseconds: never on the event loop.
        return await asyncio.to_thread(check)
    return check()


@dataclass(frozen=True)
class QueueStats:
    """Counts of one circle/topic queue."""

    circle: str
    topic: str
    waiting: int
    counts: dict[str, int]


def _no_validation(_kind: ParamsType, _params: str) -> None:
    return None


class JobManager:
    """The engine's job API (the seed's names in snake_case)."""

    def __init__(
        self,
        db: AsyncOurDB,
        index: JobIndex,
        queue: JobQueue,
        bus: EventBus,
        results_dir: Path,
        *,
        validate: Validator = _no_validation,
        queue_defaults: Mapping[str, QueueConfig] | None = None,
    ) -> None:
        self.db = db
        self.index = index
        self.queue = queue
        self.bus = bus
        self.results_dir = results_dir
        self.validate = validate
        # Retry defaults by "<circle>/<topic>", resolved into each job at submit.
        self.queue_defaults = dict(queue_defaults or {})
        # Limits by "<circle>:<topic>": the config's, then what was set at run time here;
        # written to Redis at start and again after the server lost its data.
        self.limits: dict[str, tuple[int, str]] = {
            keys.queue_name(*name.split("/", 1)): (queue.max_active, queue.rate)
            for name, queue in self.queue_defaults.items()
            if queue.max_active or queue.rate
        }
        # Reads of a version that is damaged (fails its CRC, or is not a job): each one
        # shows as a "damaged" job instead of failing the page or request it is part of.
        self.damaged_reads = 0
        # Decisions of every worker, local or remote, counted once each as their version
        # becomes durable here: failed attempts scheduled to run again, and dead letters.
        self.retries_total = 0
        self.dead_letters_total = 0
        # Held while a purge checks and deletes a batch, and while a requeue brings an
        # ended job back: a purge never deletes a job that a requeue has made live.
        self.ended_lock = asyncio.Lock()
        # Held while versions are checked against the stored ones and written (and while
        # a purge deletes): each check sees every write before it, so a version reported
        # late through the stream cannot slip past a newer one written meanwhile.
        self.history_lock = asyncio.Lock()
        # Jobs purged from the history since start (`core.jobs.purge`), and the purge
        # batches under way, which closing the history waits for.
        self.purged = 0
        self.purge_batches: set[asyncio.Future[int]] = set()
        # Single submits waiting for the batch being stored to finish (see submit_one).
        self._pending: list[_PendingSubmit] = []
        # Callers of `wait_ended`, answered with the ended Job when its end is persisted.
        self._end_waiters: dict[int, list[asyncio.Future[Job]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Jobs stored in OurDB whose ENQUEUE failed, each with the count of holds so far
        # (a job held again while a try is under way stays for the next), and the bell
        # that wakes `queue_unqueued` for them.
        self.unqueued: dict[int, int] = {}
        self._holds = 0
        self._unqueued_bell = asyncio.Event()

    # -- creating ------------------------------------------------------------------------

    def _check(
        self, spec: JobSpec, origin: _Origin = _Origin(), memo: _CheckMemo | None = None
    ) -> Job:
        """Refuse a bad submission before anything is stored.

        `memo` keeps, across the items of one batch, what their settings came to (names,
        params type, timeout, retry policy): a batch mostly repeats one set of them.
        """
        setting = (
            spec.circle,
            spec.topic,
            spec.params_type,
            spec.timeout,
            spec.retries,
            spec.backoff,
            spec.backoff_base,
            spec.backoff_max,
            None if spec.retry_on is None else tuple(spec.retry_on),
            spec.priority,
        )
        settled = memo.get(setting) if memo is not None else None
        if settled is None:
            settled = self._settle(spec)
            if memo is not None:
                memo[setting] = settled
        kind, settings = settled
        try:
            size = len(spec.params) if spec.params.isascii() else len(spec.params.encode())
        except UnicodeEncodeError as exc:
            raise JobError(
                f"params are not valid text: {exc.reason} at character {exc.start}"
            ) from None
        if size > MAX_PARAMS_BYTES:
            raise JobError(f"params are {size} bytes; the limit is {MAX_PARAMS_BYTES} bytes")
        self.validate(kind, spec.params)
        now = time.time()
        scheduled = False
        run_at = 0.0
        if spec.delay or spec.run_at:
            if not 0 <= spec.delay < math.inf:
                raise JobError(
                    f"delay must be zero or a positive, finite number of seconds, got {spec.delay}"
                )
            if not math.isfinite(spec.run_at):
                raise JobError(f"run_at must be a finite Unix time, got {spec.run_at}")
            run_at = max(float(spec.run_at), now + float(spec.delay)) if spec.delay else spec.run_at
            # A time already past runs at once, like no time at all.
            scheduled = run_at > now
        plain = not (spec.unique_key or spec.unique_for or spec.depends_on or spec.name)
        links = _NO_LINKS if plain and spec.on_parent_error == "fail" else _links(spec)
        # The settings' job with this one's own values, into a fresh instance dict: the
        # dataclass constructor (forty fields) was most of a batch item's check.
        job = object.__new__(Job)
        job.__dict__ = {
            **settings,
            "params": spec.params,
            "session_key": origin.session_key or "",
            "time_scheduled": now,
            "log": spec.log,
            "schedule": origin.schedule,
            "fire_time": origin.fire_time,
            "status": JobStatus.SCHEDULED if scheduled else JobStatus.NEW,
            "run_at": float(run_at) if scheduled else 0.0,
            **{name: make() for name, make in _FRESH_FIELDS},
            **links,
        }
        return job

    def _settle(self, spec: JobSpec) -> tuple[ParamsType, dict[str, Any]]:
        """A spec's settings checked: its params type, and a job's fields with them.

        That job's instance dict (every field, in field order) has its names, type,
        timeout and its retry policy resolved; `_check` copies it for each item.
        """
        _check_names(spec.circle, spec.topic)
        try:
            kind = ParamsType(spec.params_type)
        except ValueError:
            choices = ", ".join(t.value for t in ParamsType)
            raise JobError(
                f"params type {spec.params_type!r} is unknown; use one of {choices}"
            ) from None
        # Infinity compares as a number but stores as JSON null: refused like NaN.
        if not 0 < spec.timeout < math.inf:
            raise JobError(
                f"timeout must be a positive, finite number of seconds, got {spec.timeout}"
            )
        policy = self._policy(spec)
        settings = Job(0, spec.topic, "", spec.circle, kind, timeout=float(spec.timeout), **policy)
        return kind, vars(settings)

    def _policy(self, spec: JobSpec) -> dict[str, Any]:
        """The job's retry policy: its own fields, else its queue's defaults, checked."""
        default = self.queue_defaults.get(f"{spec.circle}/{spec.topic}") or QueueConfig()
        retries = default.retries if spec.retries is None else spec.retries
        backoff = spec.backoff or default.backoff
        base = default.backoff_base if spec.backoff_base is None else spec.backoff_base
        ceiling = default.backoff_max if spec.backoff_max is None else spec.backoff_max
        kinds = list(default.retry_on if spec.retry_on is None else spec.retry_on)
        priority = default.priority if spec.priority is None else spec.priority
        try:
            check_priority(priority)
        except ValueError as exc:
            raise JobError(str(exc)) from None
        if not isinstance(retries, int) or retries < 0:
            raise JobError(f"retries must be a whole number, 0 or more, got {retries!r}")
        if backoff not in BACKOFFS:
            raise JobError(f"backoff {backoff!r} is unknown; use one of {', '.join(BACKOFFS)}")
        if not (0 <= base < math.inf and 0 <= ceiling < math.inf):
            raise JobError("backoff_base and backoff_max must be finite and not negative")
        bad = [k for k in kinds if k not in DEAD_KINDS]
        if bad:
            raise JobError(
                f"retry_on: {bad[0]!r} cannot be retried; use some of {', '.join(DEAD_KINDS)}"
            )
        return {
            "retries": retries,
            "backoff": backoff,
            "backoff_base": float(base),
            "backoff_max": float(ceiling),
            # The usual set is left empty, so most records do not carry it.
            "retry_on": "" if tuple(kinds) == DEFAULT_RETRY_ON else ",".join(kinds),
            "priority": priority,
        }

    async def create_job(
        self,
        topic: str,
        params: str,
        *,
        circle: str = "default",
        params_type: ParamsType | str = ParamsType.HEROSCRIPT,
        timeout: float = 60.0,  # noqa: ASYNC109 - the seed's name for the job's own limit
        session_key: str | None = None,
        log: bool = False,
    ) -> Job:
        """Validate, store in OurDB (which gives the id), then queue in Redis."""
        spec = JobSpec(params, topic, circle, params_type, timeout, log)
        return (await self.create_jobs([spec], session_key=session_key))[0]

    async def create_jobs(
        self, specs: Sequence[JobSpec], **origin: Unpack[OriginOptions]
    ) -> list[Job]:
        """Create many jobs with one durable write and one Redis transaction.

        All or none: a refused item raises JobError with its place in `specs` as
        `index`, and nothing is stored. `schedule` and `fire_time` mark a schedule's fire.
        """
        return [job for job, _ in await self.submit_jobs(specs, **origin)]

    async def submit_jobs(
        self,
        specs: Sequence[JobSpec],
        *,
        session_key: str | None = None,
        schedule: str = "",
        fire_time: float = 0.0,
        meanwhile: Callable[[Sequence[tuple[Job, bool]]], object] | None = None,
    ) -> list[tuple[Job, bool]]:
        """`create_jobs`, telling for each item whether its job is new (True) or existing.

        An item whose `unique_key` is held (by a job not ended, or within `unique_for`
        of its end) answers with the holder; a later item of the batch with the key of an
        earlier one answers with the earlier one's job. Items naming batch items in
        `depends_on` are stored after those (one durable write per level of the graph).

        `meanwhile`, for a caller that makes its reply of the answer, is called with it
        once the jobs are durable, while Redis queues them (the loop waits for that
        anyway); not at all when no job of the batch is new.
        """
        origin = _Origin(session_key, schedule, fire_time)

        def check_all() -> tuple[list[Job], list[list[int | str]]]:
            drafts = []
            memo: _CheckMemo = {}
            for index, spec in enumerate(specs):
                try:
                    drafts.append(self._check(spec, origin, memo))
                except JobError as exc:
                    exc.index = index
                    raise
            return drafts, _batch_parents(specs)

        drafts, parents = await _checked(specs, check_all)
        if any(parents):
            await self._check_parents(parents)
        return await self._make(drafts, parents, meanwhile)

    async def submit_one(
        self, spec: JobSpec, *, session_key: str | None = None
    ) -> tuple[Job, bool]:
        """One submit, as `submit_jobs([spec])`; concurrent calls share one batch.

        Calls made while a batch is being stored wait for the next one: one durable
        write, one Redis script call and one events message for all of them. Each call
        is still its own: a refused spec raises its own JobError and the others are
        made. A spec with a unique key or parents goes alone, since its claim or parent
        check can refuse a whole batch.
        """
        return await self._one(spec, _Origin(session_key))

    async def submit_each(
        self, specs: Sequence[JobSpec], *, session_key: str | None = None
    ) -> list[tuple[Job, bool] | BaseException]:
        """Each spec as its own `submit_one`, all at once: its outcome or error, in its place.

        The plain ones join the shared batch without a task each (a client's coalesced
        callers come this way, 32 at a time).
        """
        origin = _Origin(session_key)
        waits = [self._one(spec, origin) for spec in specs]
        return await asyncio.gather(*waits, return_exceptions=True)

    def _one(self, spec: JobSpec, origin: _Origin) -> Awaitable[tuple[Job, bool]]:
        """One submit: joining the shared batch, or alone when it has a key or parents."""
        if spec.unique_key or spec.depends_on:
            return self._alone(spec, origin)
        return self._join(spec, origin)

    async def _alone(self, spec: JobSpec, origin: _Origin) -> tuple[Job, bool]:
        """A spec whose claim or parent check could refuse a whole batch: its own."""
        return (await self.submit_jobs([spec], session_key=origin.session_key))[0]

    def _join(self, spec: JobSpec, origin: _Origin) -> asyncio.Future[tuple[Job, bool]]:
        """The caller's answer once the next shared batch, which `spec` joins, is stored."""
        future: asyncio.Future[tuple[Job, bool]] = asyncio.get_running_loop().create_future()
        self._pending.append((spec, origin, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_pending())
        return future

    async def _flush_pending(self) -> None:
        """Store the pending single submits, a batch at a time, until none are left."""
        batch: list[_PendingSubmit] = []
        try:
            while self._pending:
                # A caller cancelled before its batch began gets no job.
                batch = [pending for pending in self._pending if not pending[2].done()]
                self._pending = []
                if not batch:
                    continue
                try:
                    outcomes = await self._submit_each(
                        [(spec, origin) for spec, origin, _ in batch]
                    )
                except Exception as exc:  # the batch's durable write or Redis failed: all of it
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (*_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue  # its caller was cancelled (its job may still be made)
                    if isinstance(outcome, JobError):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._flusher = None
            for *_, future in (*batch, *self._pending):
                future.cancel()  # only those not answered: the manager is closing
            self._pending = []

    async def _submit_each(
        self, items: Sequence[tuple[JobSpec, _Origin]]
    ) -> list[tuple[Job, bool] | JobError]:
        """Independent submits (no unique key, no parents) made as one batch.

        A refused item gets its JobError in its place; the others are made together.
        """

        def check_each() -> list[Job | JobError]:
            checked: list[Job | JobError] = []
            memo: _CheckMemo = {}
            for spec, origin in items:
                try:
                    checked.append(self._check(spec, origin, memo))
                except JobError as exc:
                    checked.append(exc)
            return checked

        checked = await _checked([spec for spec, _ in items], check_each)
        drafts = [c for c in checked if isinstance(c, Job)]
        made = iter(await self._make(drafts, [[] for _ in drafts]) if drafts else [])
        return [c if isinstance(c, JobError) else next(made) for c in checked]

    async def _make(
        self,
        drafts: Sequence[Job],
        parents: Sequence[Sequence[int | str]],
        meanwhile: Callable[[Sequence[tuple[Job, bool]]], object] | None = None,
    ) -> list[tuple[Job, bool]]:
        """Store, queue and announce checked drafts (see `submit_jobs`)."""
        answers: dict[int, Job] = {}
        claims: dict[int, tuple[str, str]] = {}
        alias = _same_key(drafts)
        try:
            if any(job.unique_key for job in drafts):
                await self._claim_unique(drafts, alias, answers, claims)
            created, items, crcs, durable = await self._store(drafts, parents, answers, alias)
            await self._hold_claims(claims, answers)
        except BaseException:
            await self._hold_claims(claims, {})
            raise
        fresh = set(created)
        made = [(answers[i], i in fresh) for i in range(len(drafts))]
        new = [answers[i] for i in created]
        answer = functools.partial(meanwhile, made) if meanwhile is not None else None
        if any(job.waiting for job in new):
            # Announced once tied to their parents, as a parent's end may release them.
            refused = await self._queue_and_index(new, crcs, b"", items, answer)
            if refused is None:
                await self.wire_dependants(new)
                await self._announce(new)
            else:
                self._hold_unqueued(new, refused)
                self._tell_bus(new)
        else:
            # Inline: a third of a millisecond for a whole batch, less than a thread hop.
            events = _events_message(new)
            try:
                refused = await self._queue_and_index(new, crcs, events, items, answer)
            finally:
                # Queued while their sync ran (see `_store`): answered once it is done.
                for step in durable:
                    await step
            if refused is not None:
                self._hold_unqueued(new, refused)
            self._tell_bus(new)
        return made

    @staticmethod
    def graph_specs(text: str) -> list[JobSpec]:
        """The batch of a HeroScript job graph (see core.jobs.graph); raises JobError."""
        from core.jobs.graph import graph_specs  # graph imports this module's JobError

        return graph_specs(text)

    async def _check_parents(self, parents: Sequence[Sequence[int | str]]) -> None:
        """Refuse parent ids that name no job (the item's index on the error)."""
        wanted = sorted({p for ps in parents for p in ps if isinstance(p, int)})
        if not wanted:
            return
        found = await asyncio.to_thread(self.read_many, wanted)
        for index, mine in enumerate(parents):
            for parent in mine:
                if isinstance(parent, int) and parent not in found:
                    raise _item_error(f"depends_on: no job with id {parent}", index)

    async def _claim_unique(
        self,
        drafts: Sequence[Job],
        alias: Mapping[int, int],
        answers: dict[int, Job],
        claims: dict[int, tuple[str, str]],
    ) -> None:
        """Claim each new unique key, or answer its items with the job that holds it."""
        for index, job in enumerate(drafts):
            if not job.unique_key or index in alias:
                continue  # a later item of a key is answered by the first one's job
            claim = keys.unique_claim_key(job.circle_id, job.topic, job.unique_key)
            token, holder = await self._claim(claim)
            if holder is not None:
                answers[index] = holder
            else:
                claims[index] = (claim, token)

    async def _claim(self, claim: str) -> tuple[str, Job | None]:
        """This submit's placeholder on a unique key, or the job that holds the key."""
        redis = self.queue.redis
        token = f"{PLACEHOLDER}{os.urandom(8).hex()}"
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        while True:
            holder = await redis.eval(scripts.CLAIM, 1, claim, token, CLAIM_TTL_MS)
            if holder is None:
                return token, None
            held = _text(holder)
            if held.startswith(PLACEHOLDER):
                # Another submit is storing the key's job right now: its id comes soon.
                if time.monotonic() > deadline:
                    raise JobError(
                        f"unique key {claim.rsplit(':', 1)[-1]!r} is still being claimed by "
                        f"another submit after {CLAIM_WAIT_SECONDS:.0f} s; try again"
                    )
                await asyncio.sleep(CLAIM_POLL_SECONDS)
                continue
            job = await self._holder(claim, held)
            if job is not None:
                return "", job
            # A holder that ended without giving the key up (an engine died between the
            # two): the key is free, taken only if it still names that stale holder.
            await redis.eval(scripts.CLAIMED, 1, claim, held, "")

    async def _holder(self, claim: str, held: str) -> Job | None:
        """The job a claim names, unless the claim is stale (no such job, or ended for good)."""
        try:
            job_id = int(held)
            live = await self.queue.get_live(job_id)
            if live is not None:
                return live
            job = await self.stored_job(job_id)
        except (ValueError, JobNotFoundError):
            return None
        if not job.status.ended:
            return job
        # Ended: the key outlives the job only for its `unique_for` (the claim's TTL).
        return job if await self.queue.redis.pttl(claim) > 0 else None

    async def _hold_claims(
        self, claims: dict[int, tuple[str, str]], answers: dict[int, Job]
    ) -> None:
        """Turn placeholders into their jobs' ids (or give them up when the job is not made)."""
        if not claims:
            return
        async with self.queue.redis.pipeline(transaction=False) as pipe:
            for index, (claim, token) in claims.items():
                job = answers.get(index)
                pipe.eval(scripts.CLAIMED, 1, claim, token, str(job.job_id) if job else "")
            held = await pipe.execute()
        for (claim, _), ok in zip(claims.values(), held, strict=True):
            if answers and not ok:
                log.warning("unique key %s: the claim expired before its job was stored", claim)

    async def _store(
        self,
        drafts: Sequence[Job],
        parents: Sequence[Sequence[int | str]],
        answers: dict[int, Job],
        alias: Mapping[int, int],
    ) -> tuple[list[int], list[list[Any]], dict[int, int], list[asyncio.Future[list[int]]]]:
        """Store the items not answered yet, parents first.

        Returns their indexes, their ENQUEUE items, the CRC of each one's record, and
        the syncs still under way, which the caller awaits before it answers.

        Items without parents in the batch go in one durable write; each further level
        of a graph takes one more, since a dependant's record names its parents' ids.
        A batch of plain jobs (no parents, no unique keys) returns once its records are
        written, with their sync under way: the ENQUEUE then goes out while the sync
        runs (about a millisecond on an idle virtual disk) instead of after it. A killed
        engine loses nothing by it (the kernel has the records); a crash of the machine
        in that millisecond may leave Redis a job whose record is lost, which the next
        start restores from Redis (`HistoryService._reconcile_chunk`).
        """
        todo = [i for i in range(len(drafts)) if i not in answers and i not in alias]
        created: list[int] = []
        items: list[list[Any]] = []
        crcs: dict[int, int] = {}
        early = not any(parents) and not any(job.unique_key for job in drafts)
        durable: list[asyncio.Future[list[int]]] = []
        while todo:
            ready = [i for i in todo if all(_resolved(p, answers, alias) for p in parents[i])]
            if not ready:  # cannot happen once _batch_parents refused cycles
                raise JobError("depends_on: the batch's graph cannot be ordered")
            level = []
            for index in ready:
                ids = [_parent_id(p, answers, alias) for p in parents[index]]
                job = drafts[index]
                if ids:
                    # Its run_at stays: once the parents are done it waits for that too.
                    job = replace(
                        job,
                        depends_on=ids,
                        status=JobStatus.SCHEDULED,
                        wait_for=",".join(str(i) for i in ids),
                    )
                level.append((index, job))
            stored = [job for _, job in level]
            fields, records = await encoded(len(stored), functools.partial(_records, stored))
            if early:
                writing, synced = self.db.start_set_many_early(records)
                durable.append(synced)
            else:
                writing = self.db.start_set_many(records)
            # The Redis items while the write and its sync run: nothing in them waits
            # for the ids.
            level_items = await encoded(
                len(stored), functools.partial(enqueue_items, stored, fields)
            )
            got = await writing
            for job, job_id in zip(stored, got, strict=True):
                job.job_id = job_id  # the drafts are this call's own: no copy needed
            crcs.update(
                (job_id, zlib.crc32(data)) for job_id, data in zip(got, records, strict=True)
            )
            for (index, _), job in zip(level, stored, strict=True):
                answers[index] = job
                created.append(index)
            items += level_items
            todo = [i for i in todo if i not in answers]
        for index, first in alias.items():
            answers[index] = answers[first]
        return created, items, crcs, durable

    async def _queue_and_index(
        self,
        jobs: Sequence[Job],
        crcs: Mapping[int, int],
        events: bytes,
        items: list[list[Any]],
        meanwhile: Callable[[], object] | None = None,
    ) -> BaseException | None:
        """ENQUEUE new jobs (stored in OurDB already) and index them, both at once.

        The script goes out first, and the rows are written while the server runs it;
        `meanwhile` runs on the loop while the rows are written in a thread (sqlite lets
        the GIL go while it works). Once queued, a job may run and the persister index
        a later version of it before its first row is in: that row is written as `new`
        (see JobIndex.upsert), which leaves the later one standing.

        Returns the error when the server did not take the ENQUEUE: the jobs are stored,
        so the submit stands, and the caller holds them for `queue_unqueued` once their
        records are durable (that loop reads them back).
        """
        if not jobs:
            return None
        queued = asyncio.ensure_future(self.queue.enqueue(jobs, events, items))
        indexed: list[asyncio.Future[None]] = []
        try:
            await asyncio.sleep(0)  # the task sends the script before it waits for the reply
            # A small batch (concurrent single submits) skips the thread hop.
            if not self.index.upsert_now(jobs, crcs, new=True):
                # Handed to the thread at once (a task would start it only after meanwhile).
                write = functools.partial(self.index.upsert, jobs, crcs, new=True)
                indexed.append(asyncio.get_running_loop().run_in_executor(None, write))
            if meanwhile is not None:
                meanwhile()
            for rows in indexed:
                await rows
        except BaseException:
            await asyncio.gather(queued, *indexed, return_exceptions=True)
            raise
        try:
            await queued
        except (RedisError, OSError) as exc:
            return exc
        return None

    def _hold_unqueued(self, jobs: Sequence[Job], exc: BaseException) -> None:
        """Keep stored jobs whose ENQUEUE failed for `queue_unqueued`.

        Refusing the submit would tell its caller no job was made while OurDB holds one,
        and a caller who tries again makes a second. Whether the script ran (a reply lost
        on the way) is not known here: `queue_unqueued` asks the server first.
        """
        log.warning(
            "the server did not take %d new jobs (%s); stored, they are queued once it answers",
            len(jobs),
            exc,
        )
        for job in jobs:
            self._holds += 1
            self.unqueued[job.job_id] = self._holds
        self._unqueued_bell.set()

    async def queue_unqueued(self) -> None:
        """Queue the jobs whose ENQUEUE failed, as soon as the server answers; until cancelled.

        A job the server holds (its ENQUEUE ran, the reply was lost) is left as it is;
        one it lacks is queued from its latest version in OurDB unless that has ended
        meanwhile (cancelled, or run: a job leaves Redis only once its end is durable).
        """
        backoff = Backoff()
        while True:
            await self._unqueued_bell.wait()
            tried = dict(self.unqueued)
            try:
                queued = await self._queue_stored(list(tried))
            except (RedisError, OSError) as exc:
                log.info("queueing %d stored jobs: %s; trying again", len(tried), exc)
                await backoff.wait()
                continue
            backoff.reset()
            for job_id, hold in tried.items():
                if self.unqueued.get(job_id) == hold:
                    del self.unqueued[job_id]
            if not self.unqueued:
                self._unqueued_bell.clear()
            if queued:
                log.warning("queued %d stored jobs the server had not taken", queued)

    async def _queue_stored(self, job_ids: Sequence[int]) -> int:
        """Queue those of these stored jobs the server lacks and that have not ended.

        An end by hand (a cancel) may come between the read of a job and its ENQUEUE.
        Under `history_lock` from read to ENQUEUE, its end cannot be stored (and its hash
        dropped) in between; and the ENQUEUE leaves a job whose hash the end's step made
        meanwhile. Else a cancelled job would be queued again, and run.
        """
        async with self.history_lock:
            live = await self.queue.get_live_many(job_ids)
            absent = [job_id for job_id in job_ids if job_id not in live]
            stored = await asyncio.to_thread(self.read_many, absent) if absent else {}
            pending = [job for job in stored.values() if not job.status.ended]
            if pending:
                await self.queue.enqueue(pending, _events_message(pending), restore=True)
        if pending:
            await self.restore_links(pending)
        return len(pending)

    async def wire_dependants(self, jobs: Sequence[Job]) -> None:
        """Tie waiting jobs (stored in Redis already) to their parents; see scripts.DEPEND."""
        waiting = [job for job in jobs if job.waiting]
        if not waiting:
            return
        redis = self.queue.redis
        now = repr(time.time())
        async with redis.pipeline(transaction=False) as pipe:
            for job in waiting:
                parents = [[p, ""] for p in job.depends_on]
                pipe.eval(
                    scripts.DEPEND, 3, *_DEPEND_KEYS, str(job.job_id), orjson.dumps(parents), now
                )
            replies = await pipe.execute()
        for job, unknown in zip(waiting, replies, strict=True):
            if not unknown:
                continue
            ids = [int(_text(u)) for u in unknown]
            stored = await asyncio.to_thread(self.read_many, ids)
            # A parent gone from OurDB too cannot be done: the dependant fails.
            known = [[i, stored[i].status.value if i in stored else "error"] for i in ids]
            await redis.eval(
                scripts.DEPEND, 3, *_DEPEND_KEYS, str(job.job_id), orjson.dumps(known), now
            )

    async def restore_links(self, jobs: Sequence[Job]) -> None:
        """Redis state of requeued jobs that reconciliation rebuilds after Redis lost its data.

        Waiting jobs wait for their parents again; jobs not ended hold their unique keys.
        """
        await self.wire_dependants(jobs)
        holders = [job for job in jobs if job.unique_key and not job.status.ended]
        if holders:
            async with self.queue.redis.pipeline(transaction=False) as pipe:
                for job in holders:
                    claim = keys.unique_claim_key(job.circle_id, job.topic, job.unique_key)
                    pipe.set(claim, str(job.job_id), nx=True)
                await pipe.execute()

    # -- reading -------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job:
        """The job's current state: Redis while it is live, else its last OurDB version."""
        live = await self.queue.get_live(job_id)
        if live is not None:
            return live
        return await self.stored_job(job_id)

    async def shown_jobs(self, job_ids: Sequence[int]) -> dict[int, Job]:
        """The state to show of each of these jobs that exists: what a reader may rely on.

        Live in Redis, except an end not yet durable: a job ended there shows its last
        OurDB version until the persister has stored the end (and dropped the hash). So
        a reader that sees `done` finds it in the history too, and a waiter is answered
        only once the end is durable. Two Redis round trips and one thread hop.
        """
        live = await self.queue.get_live_many(job_ids)
        shown = {job_id: job for job_id, job in live.items() if not job.status.ended}
        rest = [job_id for job_id in job_ids if job_id not in shown]
        stored = await asyncio.to_thread(self.read_many, rest) if rest else {}
        for job_id, last in stored.items():
            ended = live.get(job_id)
            if ended is not None and _stored_before_its_run(last, ended):
                shown[job_id] = _while_it_ran(ended)
        return {**stored, **shown}

    async def wait_ended(self, job_id: int) -> Job:
        """The job once its end (done or error) is durable; raises JobNotFoundError.

        Waits on the persist that stores the end, which hands over the ended version it
        wrote: no read after the end, no polling. A job ended already comes back at once.
        """
        future: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        waiters = self._end_waiters.setdefault(job_id, [])
        waiters.append(future)
        try:
            # Asked after the waiter is in place: an end persisted meanwhile is not missed.
            # OurDB alone says whether the end is durable (and a Redis read could swallow
            # a cancel of this call, which would then wait on). A job just submitted is
            # read here, without the two thread hops, beside the run of its job.
            job = self._stored_now(job_id) or await self.stored_job(job_id)
            if job.status.ended:
                return job
            return await future
        finally:
            if future in waiters:
                waiters.remove(future)
            if not waiters and self._end_waiters.get(job_id) is waiters:
                del self._end_waiters[job_id]

    def release_waiters(self) -> None:
        """Cancel every `wait_ended` still waiting: the history closes, no end will come."""
        waiters, self._end_waiters = self._end_waiters, {}
        for futures in waiters.values():
            for future in futures:
                future.cancel()

    def _stored_now(self, job_id: int) -> Job | None:
        """`stored_job` on the loop when one read of a cached file answers it, else None.

        None too for a damaged record or a result kept in a file: `stored_job` reads those.
        """
        raw = self.db.db.get_now(job_id)
        if not raw:
            return None
        try:
            job = Job.from_json(raw, job_id)
        except (ValueError, TypeError, KeyError):
            return None
        return None if job.result_file else job

    async def stored_job(self, job_id: int) -> Job:
        """The job's last version in OurDB (a damaged job when that version is damaged)."""
        try:
            raw = await self.db.get(job_id)
        except (RecordNotFoundError, InvalidIdError):
            raise JobNotFoundError(f"no job with id {job_id}") from None
        except CorruptRecordError as exc:
            return self._damaged(job_id, exc.reason)
        if not raw:
            raise JobNotFoundError(f"no job with id {job_id} (deleted)")
        return self._load(job_id, raw)

    def _load(self, job_id: int, raw: bytes) -> Job:
        try:
            job = Job.from_json(raw, job_id)
        except (ValueError, TypeError, KeyError) as exc:
            return self._damaged(job_id, f"not a job ({type(exc).__name__}: {exc})")
        if job.result_file:
            try:
                job.result = Path(job.result_file).read_text(encoding="utf-8")
            except OSError as exc:
                job.result = ""
                job.error = job.error or f"result file {job.result_file} unreadable: {exc}"
        return job

    def _damaged(self, job_id: int, reason: str) -> Job:
        self.damaged_reads += 1
        log.warning("job %d: damaged record: %s", job_id, reason)
        return damaged_job(job_id, reason)

    async def job_history(self, job_id: int) -> list[Job]:
        """Every stored version of the job, oldest first.

        A damaged version ends the walk back (its pointer to the older one cannot be
        trusted): it shows as the oldest version, a damaged job.
        """
        await self.stored_job(job_id)
        return await asyncio.to_thread(self._history, job_id)

    def _history(self, job_id: int) -> list[Job]:
        newest_first: list[Job] = []
        try:
            for raw in self._records_back(job_id, HISTORY_DEPTH):
                newest_first.append(self._load(job_id, raw))
        except CorruptRecordError as exc:
            newest_first.append(self._damaged(job_id, exc.reason))
        return _in_revision_order(newest_first[::-1])

    def _records_back(self, job_id: int, depth: int) -> Iterator[bytes]:
        """Up to `depth` of the job's stored records, newest first (blocking).

        A damaged one raises CorruptRecordError: its pointer to the older one cannot be
        trusted, so the walk ends there.
        """
        db = self.db.db
        loc = db.location(job_id)
        found = 0
        while not loc.is_null and found < depth:
            raw, header = db.read_at(loc, job_id)
            if raw:
                found += 1
                yield raw
            loc = header.prev

    async def list_jobs(
        self, flt: JobFilter, *, limit: int = 50, before_id: int | None = None
    ) -> list[Job]:
        """Jobs newest first, narrowed in the index, `limit` at a time below `before_id`."""
        ids = await asyncio.to_thread(self.index.query, flt, limit=limit, before_id=before_id)
        shown = await self.shown_jobs(ids)
        return [shown[i] for i in ids if i in shown]

    def read_many(self, job_ids: Sequence[int]) -> dict[int, Job]:
        """Last versions from OurDB in one thread hop (blocking: call off the loop).

        A damaged version comes back as a damaged job; ids without a record are left out.
        """
        return {job_id: job for job_id, (job, _) in self.read_raw_many(job_ids).items()}

    def read_raw_many(self, job_ids: Sequence[int]) -> dict[int, tuple[Job, bytes | None]]:
        """Like `read_many`, with each version's record bytes (None when damaged)."""
        found: dict[int, tuple[Job, bytes | None]] = {}
        for job_id in job_ids:
            try:
                raw = self.db.db.get(job_id)
            except (RecordNotFoundError, InvalidIdError):
                continue
            except CorruptRecordError as exc:
                found[job_id] = (self._damaged(job_id, exc.reason), None)
                continue
            if raw:
                job = self._load(job_id, raw)
                found[job_id] = (job, None if is_damaged(job) else raw)
        return found

    async def queue_stats(self) -> list[QueueStats]:
        """Every queue with its waiting jobs and its counts per status."""
        depths = await self.queue.depths()
        counts = await asyncio.to_thread(self.index.counts)
        names = set(depths) | {f"{c}:{t}" for c, t, _ in counts}
        stats = []
        for name in sorted(names):
            circle, topic = name.split(":", 1)
            per_status = {
                status.value: counts.get((circle, topic, status.value), 0) for status in JobStatus
            }
            stats.append(QueueStats(circle, topic, depths.get(name, 0), per_status))
        return stats

    # -- changing ------------------------------------------------------------------------

    async def pause_queue(self, circle: str, topic: str) -> None:
        """Stop handing out jobs of one queue; they keep waiting, and new ones queue up."""
        await self.queue.redis.sadd(keys.PAUSED, keys.queue_name(circle, topic))

    async def resume_queue(self, circle: str, topic: str) -> None:
        """Hand out a paused queue's jobs again, waking idle workers for them."""
        redis = self.queue.redis
        await redis.srem(keys.PAUSED, keys.queue_name(circle, topic))
        waiting = await self.queue.waiting(circle, topic)
        if waiting:
            await redis.rpush(keys.DOORBELL, *([1] * waiting))

    async def paused_queues(self) -> set[str]:
        """The "<circle>:<topic>" names of paused queues."""
        names = await self.queue.redis.smembers(keys.PAUSED)
        return {n.decode() if isinstance(n, bytes) else n for n in names}

    async def set_limits(self, circle: str, topic: str, max_active: int, rate: str) -> LimitsView:
        """Set one queue's limits for every worker at once (0 and "" lift them)."""
        _check_names(circle, topic)
        try:
            max_active, rate = check_limits(max_active, rate, "")
        except ValueError as exc:
            raise JobError(str(exc)) from None
        queue = keys.queue_name(circle, topic)
        if max_active or rate:
            self.limits[queue] = (max_active, rate)
        else:
            self.limits.pop(queue, None)
        await self.queue.set_limits(queue, _limits_json(max_active, rate))
        return (await self.queue_limits([queue]))[0]

    async def restore_limits(self) -> None:
        """Write the limits this engine knows (config, then run time) into Redis."""
        for queue, (max_active, rate) in self.limits.items():
            await self.queue.set_limits(queue, _limits_json(max_active, rate))

    async def queue_limits(self, names: Sequence[str] | None = None) -> list[LimitsView]:
        """The limits of every limited queue (or of `names`), with active jobs and holds."""
        redis = self.queue.redis
        raw = await redis.hgetall(keys.LIMITS)
        limits = {_text(name): orjson.loads(value) for name, value in raw.items()}
        wanted = sorted(limits) if names is None else list(names)
        if not wanted:
            return []  # the usual case: no queue has limits, nothing more to read
        async with redis.pipeline(transaction=False) as pipe:
            pipe.time()
            for name in wanted:
                pipe.scard(keys.active_key(name))
                pipe.hget(keys.RATE_NEXT, name)
            replies = await pipe.execute()
        seconds, micros = replies[0]
        now = seconds + micros / 1e6
        depths = await self.queue.depths()
        found = []
        for at, name in enumerate(wanted):
            active, next_start = replies[1 + 2 * at], replies[2 + 2 * at]
            data = limits.get(name, {})
            max_active, rate = int(data.get("max_active", 0)), str(data.get("rate", ""))
            held = ""
            if depths.get(name, 0):
                if max_active and active >= max_active:
                    held = f"max_active {max_active}"
                elif rate and next_start is not None and float(next_start) > now:
                    held = f"rate {rate}"
            circle, topic = name.split(":", 1)
            found.append(LimitsView(circle, topic, max_active, rate, int(active), held))
        return found

    async def complete_job(self, job_id: int, result: str) -> Job:
        """Mark a job done by hand (the seed's CompleteJob)."""
        return await self._end(job_id, JobStatus.DONE, result=result)

    async def fail_job(self, job_id: int, error: str) -> Job:
        """Mark a job failed by hand (the seed's FailJob)."""
        return await self._end(job_id, JobStatus.ERROR, error=error)

    async def cancel_job(self, job_id: int) -> Job:
        """End a waiting or running job with the error "cancelled"."""
        return await self._end(
            job_id, JobStatus.ERROR, error="cancelled", error_kind=ErrorKind.CANCELLED
        )

    async def update_job_status(self, job_id: int, status: JobStatus | str) -> Job:
        """Move a job to a status: new requeues it, done/error end it, active marks it."""
        target = JobStatus(status)
        if target is JobStatus.NEW:
            return await self.requeue_job(job_id)
        if target.ended:
            return await self._end(job_id, target)
        job = await self.get_job(job_id)
        if job.status.ended:
            raise JobError(
                f"job {job_id} has ended ({job.status}); requeue it instead", kind="ended"
            )
        key = keys.job_key(job.circle_id, job.topic, job_id)
        async with self.queue.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "status", JobStatus.ACTIVE.value)
            pipe.hincrby(key, "revision", 1)
            _, taken = await pipe.execute()
        job = replace(
            job,
            status=JobStatus.ACTIVE,
            time_start=job.time_start or time.time(),
            revision=_revision_after(job, taken),
        )
        await self.persist([job])
        return job

    async def requeue_job(self, job_id: int) -> Job:
        """Run an ended job again under the same id; its history continues."""
        async with self.ended_lock:
            return await self._requeue(job_id)

    async def _requeue(self, job_id: int) -> Job:
        job = await self.get_job(job_id)
        if is_damaged(job):
            # Its circle, topic and params are unknown: there is nothing to run again.
            raise JobError(f"job {job_id} cannot be requeued: {job.error}", kind="ended")
        if not job.status.ended:
            raise JobError(
                f"job {job_id} is {job.status}, not ended; nothing to requeue", kind="not_ended"
            )
        job = replace(
            job,
            status=JobStatus.NEW,
            attempts=0,
            worker="",
            error="",
            result="",
            result_file="",
            log_lines=[],
            time_start=0.0,
            time_end=0.0,
            time_scheduled=time.time(),
            error_kind="",
            run_at=0.0,
            # Its hash is gone (or ended, so nothing else changes it): count on from it.
            revision=job.revision + 1,
            # The new run reports its own; the old value stays in the earlier versions.
            progress=None,
            progress_message="",
            # Run again at once: its parents were met (or failed) the first time.
            wait_for="",
        )
        if job.unique_key:
            await self._reclaim(job)
        step = await self.persist_durably([job])
        try:
            if step is not None:
                await step
            await self.queue.enqueue([job])
        except (RedisError, OSError) as exc:
            # Stored as new again: the requeue stands, as a submit's does.
            self._hold_unqueued([job], exc)
            self._tell_bus([job])
        return job

    async def _reclaim(self, job: Job) -> None:
        """A requeued job holds its unique key again; refused while another job holds it."""
        claim = keys.unique_claim_key(job.circle_id, job.topic, job.unique_key)
        token, holder = await self._claim(claim)
        if holder is not None and holder.job_id != job.job_id:
            raise JobError(
                f"job {job.job_id} cannot be requeued: its unique key {job.unique_key!r} is "
                f"held by job {holder.job_id} ({holder.status})"
            )
        if token:
            await self.queue.redis.eval(scripts.CLAIMED, 1, claim, token, str(job.job_id))
        else:
            # Still its own from `unique_for` after the end: held again, with no expiry.
            await self.queue.redis.set(claim, str(job.job_id))

    async def requeue_many(self, flt: JobFilter, *, limit: int = 10_000) -> list[Job]:
        """Run again every ended job the filter finds (e.g. all dead letters), newest first.

        Each one goes back as `requeue_job` does; jobs that are not ended (or damaged)
        are skipped rather than failing the rest.
        """
        ids = await asyncio.to_thread(self.index.query, flt, limit=limit, before_id=None)
        done: list[Job] = []
        for job_id in ids:
            try:
                done.append(await self.requeue_job(job_id))
            except JobError as exc:
                log.info("job %d not requeued: %s", job_id, exc)
        return done

    async def _end(
        self,
        job_id: int,
        status: JobStatus,
        *,
        result: str = "",
        error: str = "",
        error_kind: str = "",
    ) -> Job:
        job = await self.get_job(job_id)
        if job.status.ended:
            raise JobError(f"job {job_id} has already ended ({job.status})", kind="ended")
        # Checked again in the script: the run may end between this read and that step,
        # and a second end would then follow the first into the history.
        done, *rest = await self.queue.redis.eval(
            scripts.END_BY_HAND,
            5,
            keys.job_key(job.circle_id, job.topic, job_id),
            keys.queue_key(job.circle_id, job.topic, job.priority),
            keys.active_key(job.queue),
            keys.DOORBELL,
            keys.SCHEDULED,
            str(job_id),
            status.value,
            keys.CANCEL_CHANNEL,
        )
        if not done:
            raise JobError(f"job {job_id} has already ended ({_text(rest[0])})", kind="ended")
        flat, unreported, taken = rest
        ended = replace(
            job,
            status=status,
            result=result,
            error=error,
            error_kind=error_kind,
            run_at=0.0,
            time_end=time.time(),
            revision=_revision_after(job, taken),
        )
        # A run whose `active` version was not reported yet (see scripts.FETCH) gets it
        # stored before its end, from the hash as the script found it.
        versions = [job_of_reply(flat), ended] if unreported else [ended]
        await self.persist(versions)
        return ended

    # -- persisting ----------------------------------------------------------------------

    async def persist(self, versions: Sequence[Job], **options: Unpack[PersistOptions]) -> None:
        """Write job versions to OurDB (one sync), index them, drop ended ones from Redis.

        `acknowledge` names stream entries to acknowledge and delete once the versions
        are durable, in the same round trip as the rest of the Redis work. `on_handed`
        is called once the versions are handed to OurDB, before its sync (the persister
        reads its next batch meanwhile). With
        `after_end`, a reported version of a job whose last durable version has ended is
        dropped: after a failover, a worker may run again a job whose end the promoted
        replica never got, and that run must not be a second end in its history.

        A version whose revision is below its job's stored last one (reported through the
        stream while a newer one was written directly) is stored before it: that newer
        record is written again after it, so it stays the last version, and the history
        reads in revision order (`job_history`). A version of a purged job is dropped.
        """
        step = await self.persist_durably(versions, **options)
        if step is not None:
            await step

    async def persist_durably(
        self,
        versions: Sequence[Job],
        *,
        skip_duplicates: bool = False,
        acknowledge: Sequence[bytes | str] = (),
        after_end: bool = False,
        on_handed: Callable[[], object] | None = None,
    ) -> Coroutine[Any, Any, None] | None:
        """The OurDB and index part of `persist`; returns its Redis step, for the caller to run.

        Waiters on the ended jobs are answered before it returns. The step (drop the
        ended jobs from Redis, acknowledge the entries, publish and tell the bus) is None
        when there is nothing to do; steps must run in the order of their writes.
        """
        # A version stored before a crash still gets its Redis step below: the engine may
        # have died between the OurDB write and that step, leaving its dependants waiting
        # and its unique key held. The step is idempotent, so a second run changes nothing.
        every = versions
        async with self.history_lock:
            written = await self._write(versions, skip_duplicates, after_end, on_handed)
        # A waiter needs the end durable, nothing of the Redis step: answered now, it
        # saves the submitter that round trip.
        self._answer_waiters(written)
        # Told once per job and batch, in its last version: a short job's active version
        # and its end arrive together, and the end is where it is now.
        latest = _last_of_each(written)
        if not latest and not acknowledge and not any(job.status.ended for job in every):
            return None
        # One command for the whole batch, however many jobs ended: drop the ended jobs,
        # acknowledge the entries, publish the events. Per job, Redis work was most of
        # the engine's CPU. Stale ends are dropped from Redis too: the job's hash there
        # is a leftover.
        ended = [
            (
                str(job.job_id),
                keys.job_key(job.circle_id, job.topic, job.job_id),
                job.status,
                keys.unique_claim_key(job.circle_id, job.topic, job.unique_key)
                if job.unique_key
                else "",
                int(job.unique_for * 1000),
                1 if job.depends_on else 0,
                job.revision,
            )
            for job in every
            if job.status.ended
        ]
        entries = [_text(entry) for entry in acknowledge]
        return self._persisted(ended, entries, latest)

    async def _persisted(
        self, ended: list[tuple[Any, ...]], entries: list[str], latest: list[Job]
    ) -> None:
        """The Redis step of a persist, then the bus."""
        events = await encoded(len(latest), lambda: _events_message(latest))
        # EVAL, not a registered script: redis-py would send a SCRIPT EXISTS first each
        # time; the server caches the script by its hash anyway.
        await self.queue.redis.eval(
            scripts.PERSISTED,
            3,
            keys.JOB_LOCATION,
            keys.STREAM,
            keys.DOORBELL,
            keys.STREAM_GROUP,
            orjson.dumps(ended),
            orjson.dumps(entries),
            events,
            keys.EVENTS_CHANNEL,
            repr(time.time()),
        )
        # Told after every effect: whoever reads the job on its event finds the new state.
        self._tell_bus(latest)

    async def _write(
        self,
        versions: Sequence[Job],
        skip_duplicates: bool,
        after_end: bool,
        on_handed: Callable[[], object] | None = None,
    ) -> list[Job]:
        """The OurDB and index part of `persist`; returns the versions stored (or told again).

        The caller holds `history_lock`.
        """
        stored: dict[int, bytes] = {}
        # Versions stored already that are still their job's last: told again (bus,
        # index), since what failed after their write may have been that very step.
        again: dict[int, Job] = {}
        if skip_duplicates:
            recent = await asyncio.to_thread(self._recent_records, {j.job_id for j in versions})
            stored = {job_id: kept[0] for job_id, kept in recent.items()}
            fresh = []
            for job in versions:
                kept = recent.get(job.job_id, [])
                data = job.to_json()
                if data not in kept:
                    fresh.append(job)
                elif data == kept[0]:
                    again[job.job_id] = job
            versions = fresh
            for job in versions:
                again.pop(job.job_id, None)
        if after_end and versions:
            versions, _stale = await self._split_after_end(versions)
        if not versions:
            if on_handed is not None:
                on_handed()  # nothing to write: as good as handed over
            return await self._index_again(list(again.values()), stored)
        ids = sorted({job.job_id for job in versions})
        found = self.index.revisions_now(ids)
        if found is None:
            found = await asyncio.to_thread(self.index.revisions, ids)
        revisions, purged = found
        for job_id, raw in stored.items():
            # Read anyway when draining after a crash, which the index may not have seen.
            revisions[job_id] = max(revisions.get(job_id, 0), _revision_of(raw))
        if purged:
            log.warning("dropped versions of %d jobs purged meanwhile", len(purged))
            versions = [job for job in versions if job.job_id not in purged]
        # A job's last version in a batch is its newest one: the stream holds each job's
        # versions in the order their revisions were taken.
        last = {job.job_id: job for job in versions}
        behind = sorted(i for i, job in last.items() if job.revision < revisions.get(i, 0))
        newer = await asyncio.to_thread(self._last_records, behind) if behind else {}
        if behind:
            log.info("stored %d late versions before their jobs' newer ones", len(behind))
        self._count_outcomes(versions)
        encoded_versions = await self._records(versions)
        records = [(data, job.job_id) for data, job in zip(encoded_versions, versions, strict=True)]
        records += [(newer[job_id], job_id) for job_id in behind if job_id in newer]
        # `restore`: a job whose record OurDB lost (a torn tail) while Redis kept it gets
        # one again, where its versions would be refused; purged jobs are left out above.
        written = self.db.start_set_many(records, restore=True)
        if on_handed is not None:
            on_handed()
        await written
        # The last version of a job in this batch is the one its index row shows; a job
        # whose newer version was written again keeps the row it has.
        latest = [job for job in versions if job.job_id not in newer]
        crcs = {job_id: zlib.crc32(record) for record, job_id in records if job_id not in newer}
        if latest and not self.index.upsert_now(latest, crcs):
            await asyncio.to_thread(self.index.upsert, latest, crcs)
        return latest + await self._index_again(list(again.values()), stored)

    async def _index_again(self, jobs: list[Job], stored: dict[int, bytes]) -> list[Job]:
        """Index rows for versions stored before (a crash may have cut off their rows)."""
        if jobs:
            crcs = {job.job_id: zlib.crc32(stored[job.job_id]) for job in jobs}
            if not self.index.upsert_now(jobs, crcs):
                await asyncio.to_thread(self.index.upsert, jobs, crcs)
        return jobs

    def _count_outcomes(self, versions: Sequence[Job]) -> None:
        for job in versions:
            if job.status is JobStatus.SCHEDULED and job.error_kind:
                self.retries_total += 1
            elif job.dead:
                self.dead_letters_total += 1

    async def _split_after_end(self, versions: Sequence[Job]) -> tuple[list[Job], list[Job]]:
        """The versions to keep, and those reported after their job's durable end."""
        ended = await asyncio.to_thread(
            self.index.ended_among, sorted({j.job_id for j in versions})
        )
        keep: list[Job] = []
        stale: list[Job] = []
        for job in versions:
            (stale if job.job_id in ended else keep).append(job)
            if job.status.ended:
                # A second end of the same job later in this batch is stale too.
                ended.add(job.job_id)
        if stale:
            log.warning("dropped %d versions reported after their job had ended", len(stale))
        return keep, stale

    def _recent_records(self, job_ids: Iterable[int]) -> dict[int, list[bytes]]:
        """Each job's last RECENT_RECORDS stored records, newest first (blocking).

        A batch drained again after a crash holds a few versions of a job at most (an
        end and the `active` it carried, say): the ones stored already are among these.
        """
        found: dict[int, list[bytes]] = {}
        for job_id in job_ids:
            records: list[bytes] = []
            with contextlib.suppress(RecordNotFoundError, InvalidIdError, CorruptRecordError):
                records.extend(self._records_back(job_id, RECENT_RECORDS))
            if records:
                found[job_id] = records
        return found

    def _last_records(self, job_ids: Iterable[int]) -> dict[int, bytes]:
        """The last stored record of each of these jobs that has a readable one (blocking)."""
        found: dict[int, bytes] = {}
        for job_id in job_ids:
            try:
                found[job_id] = self.db.db.get(job_id)
            except (RecordNotFoundError, InvalidIdError, CorruptRecordError):
                continue
        return found

    async def _records(self, versions: Sequence[Job]) -> list[bytes]:
        """Each version's OurDB record; a big batch's are encoded in a thread."""
        plain = await encoded(len(versions), lambda: [_plain_record(job) for job in versions])
        return [data or await self._record(job) for job, data in zip(versions, plain, strict=True)]

    async def _record(self, job: Job) -> bytes:
        """The OurDB record; a result too big for one record goes to a file, whole."""
        if len(job.log_lines) > MAX_LOG_LINES:
            job = replace(job, log_lines=job.log_lines[-MAX_LOG_LINES:])
        data = job.to_json()
        if len(data) <= MAX_RECORD_BYTES:
            return data
        path = self.results_dir / f"{job.job_id}-{int(time.time() * 1000)}.txt"
        await asyncio.to_thread(_write_durably, path, job.result)
        data = replace(job, result="", result_file=str(path)).to_json()
        if len(data) > MAX_RECORD_BYTES:
            trimmed = [line[:200] for line in job.log_lines[-20:]]
            data = replace(job, result="", result_file=str(path), log_lines=trimmed).to_json()
        return data

    async def _announce(self, jobs: Sequence[Job]) -> None:
        """Tell other processes (Redis pub/sub) and this one (the bus) of state changes."""
        async with self.queue.redis.pipeline(transaction=False) as pipe:
            self._publish(jobs, pipe)
            await pipe.execute()
        self._tell_bus(jobs)

    def awaited(self, versions: Sequence[Job]) -> bool:
        """Whether a `wait_ended` caller waits for the end of one of these versions."""
        waiters = self._end_waiters
        return bool(waiters) and any(j.job_id in waiters for j in versions if j.status.ended)

    def _answer_waiters(self, jobs: Sequence[Job]) -> None:
        """Hand the ended ones among these durable versions to their `wait_ended` callers."""
        if self._end_waiters:
            for job in jobs:
                if job.status.ended:
                    for future in self._end_waiters.pop(job.job_id, ()):
                        if not future.done():
                            future.set_result(job)

    def _tell_bus(self, jobs: Sequence[Job]) -> None:
        self._answer_waiters(jobs)
        for job in jobs:
            self.bus.publish(
                JobStateChanged(
                    job_id=job.job_id,
                    circle=job.circle_id,
                    topic=job.topic,
                    status=str(job.status),
                    error=job.error,
                )
            )

    @staticmethod
    def _publish(jobs: Sequence[Job], pipe: Pipeline) -> None:
        """Queue the jobs' state changes on `pipe` for the events channel, as one message."""
        message = _events_message(jobs)
        if message:
            pipe.publish(keys.EVENTS_CHANNEL, message)


def _records(jobs: Sequence[Job]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """New jobs' fields (`Job.set_fields`) and their OurDB records, made of those fields.

    The fields make their ENQUEUE items too (`enqueue_items`): one pass over each job.
    """
    fields = [job.set_fields() for job in jobs]
    return fields, [orjson.dumps(data) for data in fields]


def _last_of_each(jobs: Sequence[Job]) -> list[Job]:
    """Each job's last version among these, in the order the jobs first appear."""
    return list({job.job_id: job for job in jobs}.values())


def _plain_record(job: Job) -> bytes:
    """A version's record as it is, or b"" when `_record` must trim it first."""
    if len(job.log_lines) > MAX_LOG_LINES:
        return b""
    data = job.to_json()
    return data if len(data) <= MAX_RECORD_BYTES else b""


def _events_message(jobs: Sequence[Job]) -> bytes:
    """The events-channel message for these jobs' state changes (empty for no jobs).

    One job's change is one JSON object (the form readers always knew); several go as
    one JSON array of those objects, so a batch costs one message, not one per job.
    """
    payloads = [
        {
            "type": "job",
            "id": job.job_id,
            "queue": job.queue,
            "status": str(job.status),
            "origin": PROCESS_ORIGIN,
        }
        for job in jobs
    ]
    if not payloads:
        return b""
    return orjson.dumps(payloads[0] if len(payloads) == 1 else payloads)


def _check_names(circle: str, topic: str) -> None:
    for what, name in (("circle", circle), ("topic", topic)):
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise JobError(
                f"{what} {name!r} is not a valid name (1-64 of letters, digits, '_', '.', '-')"
            )


def _limits_json(max_active: int, rate: str) -> str:
    """The Redis form of a queue's limits ('' for none); absent keys are no limit.

    `interval` is the rate as seconds between starts, what the fetch script spaces by.
    """
    data: dict[str, Any] = {}
    if max_active:
        data["max_active"] = max_active
    if rate:
        count, period = parse_rate(rate)
        data["rate"] = rate
        data["interval"] = period / count
    return orjson.dumps(data).decode() if data else ""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _revision_after(job: Job, taken: int) -> int:
    """The revision a direct change takes: the one it took on the hash, or more.

    When Redis no longer held the job, its count started again at 1: the change then
    counts on from the version it was made from.
    """
    return max(int(taken), job.revision + 1)


def _revision_of(record: bytes) -> int:
    """The revision a stored record carries (0 for one from before revisions, or unreadable)."""
    try:
        data = orjson.loads(record)
    except orjson.JSONDecodeError:
        return 0
    revision = data.get("revision", 0) if isinstance(data, dict) else 0
    return revision if isinstance(revision, int) else 0


def _in_revision_order(versions: Sequence[Job]) -> list[Job]:
    """A job's versions, oldest first, by revision.

    A version stored late (it arrived after a newer one was written directly) moves back
    to its place, and the copy of the newer one written after it to stay the last goes.
    One without a revision (from before revisions, or damaged) keeps its place after the
    version stored before it.
    """
    keyed: list[tuple[int, Job]] = []
    for job in versions:
        keyed.append((job.revision or (keyed[-1][0] if keyed else 0), job))
    ordered: list[Job] = []
    for _, job in sorted(keyed, key=lambda pair: pair[0]):
        if job.revision and ordered and ordered[-1] == job:
            continue
        ordered.append(job)
    return ordered


def _write_durably(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _links(spec: JobSpec) -> dict[str, Any]:
    """The unique-job and graph fields of a new job, checked (parents resolve later)."""
    key = spec.unique_key
    if key and not UNIQUE_KEY_PATTERN.match(key):
        raise JobError(
            f"unique_key {key[:40]!r} is not valid (1-200 of letters, digits, '_.:/@=+-')"
        )
    if not 0 <= spec.unique_for <= MAX_UNIQUE_FOR:
        raise JobError(f"unique_for must be 0..{MAX_UNIQUE_FOR:.0f} seconds, got {spec.unique_for}")
    if spec.unique_for and not key:
        raise JobError("unique_for needs a unique_key")
    if spec.on_parent_error not in ON_PARENT_ERROR:
        raise JobError(
            f"on_parent_error {spec.on_parent_error!r} is unknown; use one of "
            + ", ".join(ON_PARENT_ERROR)
        )
    if spec.name and not NAME_PATTERN.match(spec.name):
        raise JobError(f"name {spec.name!r} is not a valid name (1-64 of letters, digits, '_.-')")
    if len(spec.depends_on) > MAX_PARENTS:
        raise JobError(
            f"depends_on names {len(spec.depends_on)} parents; the limit is {MAX_PARENTS}"
        )
    for parent in spec.depends_on:
        if isinstance(parent, bool) or not isinstance(parent, int | str):
            raise JobError(f"depends_on: {parent!r} is neither a job id nor a name")
        if isinstance(parent, int) and parent < 1:
            raise JobError(f"depends_on: {parent} is not a job id")
    return {
        "unique_key": key,
        "unique_for": float(spec.unique_for),
        "on_parent_error": "" if spec.on_parent_error == "fail" else spec.on_parent_error,
        "name": spec.name,
    }


def _batch_parents(specs: Sequence[JobSpec]) -> list[list[int | str]]:
    """Each item's parents: existing job ids (int) and batch items (their index, as str).

    Raises JobError (with the item's index) for a name no earlier or later item has,
    two items of one name, and a cycle among the items, naming the jobs on it.
    """
    if not any(spec.name or spec.depends_on for spec in specs):
        return [[] for _ in specs]
    names: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.name:
            if spec.name in names:
                raise _item_error(f"two jobs are named {spec.name!r}", index)
            names[spec.name] = index
    parents: list[list[int | str]] = []
    for index, spec in enumerate(specs):
        mine: list[int | str] = []
        for parent in spec.depends_on:
            if isinstance(parent, str):
                if parent not in names:
                    raise _item_error(
                        f"depends_on: no job of this batch is named {parent!r}", index
                    )
                if names[parent] == index:
                    raise _item_error(f"job {parent!r} depends on itself", index)
                mine.append(str(names[parent]))
            elif parent not in mine:
                mine.append(parent)
        parents.append(mine)
    cycle = _find_cycle([[int(p) for p in ps if isinstance(p, str)] for ps in parents])
    if cycle:
        label = [specs[i].name or f"item {i}" for i in cycle]
        raise _item_error("depends_on makes a cycle: " + " -> ".join([*label, label[0]]), cycle[0])
    return parents


def _find_cycle(edges: Sequence[Sequence[int]]) -> list[int]:
    """One cycle in the graph (item -> its parents), as the items on it; empty for none."""
    state = [0] * len(edges)  # 0 unseen, 1 on the current path, 2 finished
    for root in range(len(edges)):
        if state[root]:
            continue
        path: list[int] = []
        stack: list[tuple[int, int]] = [(root, 0)]
        while stack:
            node, at = stack.pop()
            if at == 0:
                state[node] = 1
                path.append(node)
            if at < len(edges[node]):
                stack.append((node, at + 1))
                nxt = edges[node][at]
                if state[nxt] == 1:
                    return path[path.index(nxt) :]
                if state[nxt] == 0:
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return []


def _item_error(message: str, index: int) -> JobError:
    exc = JobError(message)
    exc.index = index
    return exc


_DEPEND_KEYS = (keys.JOB_LOCATION, keys.STREAM, keys.DOORBELL)


def _same_key(drafts: Sequence[Job]) -> dict[int, int]:
    """Items whose unique key an earlier item of the batch has: index -> that item's index."""
    first: dict[tuple[str, str, str], int] = {}
    alias: dict[int, int] = {}
    for index, job in enumerate(drafts):
        if job.unique_key:
            place = (job.circle_id, job.topic, job.unique_key)
            alias_of = first.setdefault(place, index)
            if alias_of != index:
                alias[index] = alias_of
    return alias


def _resolved(parent: int | str, answers: Mapping[int, Job], alias: Mapping[int, int]) -> bool:
    if isinstance(parent, int):
        return True
    index = int(parent)
    return alias.get(index, index) in answers


def _parent_id(parent: int | str, answers: Mapping[int, Job], alias: Mapping[int, int]) -> int:
    if isinstance(parent, int):
        return parent
    index = int(parent)
    return answers[alias.get(index, index)].job_id


def _stored_before_its_run(stored: Job, ended: Job) -> bool:
    """Whether the stored version is from before the attempt that ended live in Redis.

    A short attempt may end before its `active` version is stored (that version rides
    on the end's stream entry); the last stored version is then `new` (or
    `scheduled`, or an earlier attempt's), which the job has left behind. An attempt's
    start is stamped when a worker takes it, so a later start than the stored one's is
    a run the history does not hold yet; an end with no run of its own (a cancel while
    queued, a parent's failure) keeps the stored start.
    """
    return ended.time_start > stored.time_start


def _while_it_ran(ended: Job) -> Job:
    """An attempt ended in Redis, shown as it was while it ran: its `active` version.

    The end is shown once it is durable (see `shown_jobs`); until then this is what a
    reader saw a moment ago, and what the history will hold before the end.
    """
    return replace(
        ended,
        status=JobStatus.ACTIVE,
        result="",
        result_file="",
        error="",
        error_kind="",
        time_end=0.0,
        revision=ended.revision - 1,
        log_lines=list(ended.log_lines),
    )
