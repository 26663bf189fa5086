"""Periodic jobs: schedules (cron or a fixed interval), their durable state, and the firing service.

Fire times come from `croniter` rather than a parser of our own: it reads the standard
five fields and an optional sixth one for seconds, takes time-zone-aware datetimes (so
`0 9 * * *` in Europe/Brussels stays at 9:00 across daylight saving), and is widely
used. (`cronsim` is well kept too, but has no seconds field, which `* * * * * *` needs.)

Exactly one job per (schedule, fire time), whatever the number of engines on one Redis:

1. an engine claims a fire with `SET heroagent:fired:<name>:<t> "claim:<engine>" NX PX`
   (in a script that also refuses fires older than the newest claim by more than the
   retention, whose own claim key may have expired);
2. the winner creates the job (OurDB, durable, then Redis), recording `schedule` and
   `fire_time` on it;
3. it replaces the claim's value with `job:<engine>:<id>` and notes the fire in its
   `<data>/schedules.json`.

An engine that dies between 1 and 3 leaves a claim in its own name. When it starts again
(same data dir, so the same engine id) and meets its own claim among the fires due, it
looks for a job of that schedule and fire time in its history: found, the claim is
completed; not found, the job is created then (late, not lost, not doubled). An engine
that never comes back leaves its claimed fire to nobody: the others cannot see its
history, and taking the fire over could double a job it did make. Claims live in Redis,
so a FLUSHALL inside the few milliseconds between two engines' claims of the same fire
could let both run it; fire times already noted in schedules.json never fire again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from redis.exceptions import RedisError

from core.config import Config, ScheduleConfig
from core.events import JobFilter, JobSpec
from core.events.bus import EventBus
from core.jobs import keys
from core.jobs.manager import JobManager
from core.jobs.model import NAME_PATTERN, Job
from core.services import Service, ServiceStartError

log = logging.getLogger(__name__)

MISSED_POLICIES = ("latest", "all", "skip")
# A fire handled within this many seconds of its time is on time; later, it was missed.
ON_TIME_SECONDS = 2.0
# At most this many missed fires are run at once under `missed = "all"`.
MAX_CATCH_UP = 1_000
# Claims are kept at least this long (and four periods for slow schedules).
MIN_RETENTION_SECONDS = 3_600.0
# The longest the loop sleeps, so a clock jump is noticed within a minute.
MAX_SLEEP_SECONDS = 60.0

_EVERY = re.compile(r"^\s*(?:every\s+)?(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$", re.I)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3_600.0, "d": 86_400.0}

# Claim a fire: refuse one too far behind the newest claim, else SET NX; on refusal the
# claim's current value comes back so an engine can tell its own unfinished claim.
_CLAIM = """
local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
local fire = tonumber(ARGV[1])
if fire + tonumber(ARGV[4]) < newest then return {0, 'expired'} end
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then
  if fire > newest then redis.call('SET', KEYS[2], ARGV[1]) end
  return {1, ARGV[2]}
end
return {0, redis.call('GET', KEYS[1]) or ''}
"""


class ScheduleError(ValueError):
    """A schedule definition was refused; the message says what is wrong."""


def parse_every(text: str) -> float:
    """Seconds of an interval such as `every 10s`, `5m`, `1.5h`, `250ms` (`every` optional)."""
    match = _EVERY.match(text)
    if match is None:
        raise ScheduleError(f"interval {text!r} is not like 'every 10s' (units ms, s, m, h, d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds < 0.1:
        raise ScheduleError(f"interval {text!r} is shorter than 100 ms")
    return seconds


@dataclass(frozen=True)
class Schedule(ScheduleConfig):
    """One periodic job: a `[schedules.<name>]` table's fields, its name and its source."""

    name: str = ""
    # "config" for `[schedules.<name>]`, "runtime" for ones added through the API.
    source: str = "runtime"

    def job_spec(self) -> JobSpec:
        """The job each fire creates."""
        return JobSpec(self.params, self.topic, self.circle, self.params_type, self.timeout)

    def check(self) -> Schedule:
        """Refuse a bad definition (raise ScheduleError); return self."""
        if not NAME_PATTERN.match(self.name):
            raise ScheduleError(
                f"schedule name {self.name!r} is not valid (1-64 of letters, digits, '_', '.', '-')"
            )
        if bool(self.cron) == bool(self.every):
            raise ScheduleError(f"schedule {self.name!r} needs exactly one of cron or every")
        if self.missed not in MISSED_POLICIES:
            raise ScheduleError(
                f"schedule {self.name!r}: missed must be one of {', '.join(MISSED_POLICIES)}"
            )
        self.zone()
        if self.every:
            parse_every(self.every)
        elif not croniter.is_valid(self.cron):
            raise ScheduleError(f"schedule {self.name!r}: {self.cron!r} is not a cron expression")
        elif len(self.cron.split()) > 6:
            raise ScheduleError(f"schedule {self.name!r}: cron takes 5 fields, or 6 with seconds")
        if not self.timeout > 0:
            raise ScheduleError(f"schedule {self.name!r}: timeout must be positive")
        return self

    def zone(self) -> ZoneInfo:
        """The time zone cron fields are read in."""
        try:
            return ZoneInfo(self.tz or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"schedule {self.name!r}: unknown time zone {self.tz!r}") from None

    def next_fire(self, after: float) -> float:
        """The first fire time strictly after `after` (a Unix time)."""
        if self.every:
            # Multiples of the interval since the epoch: every engine agrees on them.
            step = parse_every(self.every)
            return (math.floor(after / step + 1e-9) + 1) * step
        start = datetime.fromtimestamp(after, self.zone())
        return float(croniter(self.cron, start).get_next(float))

    def fires_between(self, after: float, until: float, limit: int = MAX_CATCH_UP) -> list[float]:
        """Fire times in (after, until], oldest first; the newest `limit` when there are more.

        Counted back from `until`, so a long downtime costs `limit` steps, not one per fire.
        """
        if until <= after:
            return []
        if self.every:
            step = parse_every(self.every)
            first = math.floor(after / step + 1e-9) + 1
            last = math.floor(until / step + 1e-9)
            return [k * step for k in range(max(first, last - limit + 1), last + 1)]
        found: list[float] = []
        it = croniter(self.cron, datetime.fromtimestamp(until + 0.001, self.zone()))
        while len(found) < limit:
            t = float(it.get_prev(float))
            if t <= after:
                break
            if t <= until:
                found.append(t)
        found.reverse()
        return found

    def retention(self, now: float) -> float:
        """How long a claim is kept: long enough that a late engine still sees it."""
        first = self.next_fire(now)
        return max(MIN_RETENTION_SECONDS, 4 * (self.next_fire(first) - first))

    @classmethod
    def from_config(cls, name: str, section: ScheduleConfig) -> Schedule:
        """A schedule of `[schedules.<name>]`."""
        return cls(name=name, source="config", **asdict(section)).check()


def due_fires(schedule: Schedule, last: float, now: float) -> list[float]:
    """The fires to run now, after the one handled last, under the schedule's missed policy.

    A fire within ON_TIME_SECONDS of `now` is on time and always runs; older ones were
    missed (the engine was down or paused): `latest` runs only the newest fire due,
    `all` runs each one (at most MAX_CATCH_UP), `skip` runs only the on-time ones.
    """
    due = schedule.fires_between(last, now)
    if not due:
        return []
    if schedule.missed == "all":
        return due
    if schedule.missed == "skip":
        return [t for t in due if now - t <= ON_TIME_SECONDS]
    return [due[-1]]


@dataclass
class ScheduleState:
    """What is remembered of one schedule between runs."""

    last_fire: float = 0.0
    paused: bool = False
    fires: int = 0
    last_job: int = 0


@dataclass
class ScheduleStore:
    """`<data>/schedules.json`: run-time schedules and the state of every schedule."""

    path: Path
    engine_id: str = ""
    runtime: dict[str, Schedule] = field(default_factory=dict)
    states: dict[str, ScheduleState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ScheduleStore:
        """Read the file (a missing one is empty; a new engine id is made for it)."""
        store = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            raise ServiceStartError(f"{path}: cannot read: {exc}") from None
        store.engine_id = str(data.get("engine_id") or secrets.token_hex(8))
        for name, item in (data.get("schedules") or {}).items():
            try:
                store.runtime[name] = Schedule(**{**item, "name": name}).check()
            except (TypeError, ScheduleError) as exc:
                log.error("%s: schedule %r is left out: %s", path, name, exc)
        for name, item in (data.get("state") or {}).items():
            store.states[name] = ScheduleState(**item)
        return store

    def save(self) -> None:
        """Write atomically (a temporary file renamed over the old one), readable by us only."""
        data = {
            "engine_id": self.engine_id,
            "schedules": {
                n: {k: v for k, v in asdict(s).items() if k != "name"}
                for n, s in self.runtime.items()
            },
            "state": {n: asdict(s) for n, s in self.states.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".schedules.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule with its state, for the engine API's views."""

    schedule: Schedule
    paused: bool
    last_fire: float
    next_fire: float
    fires: int
    last_job: int


class SchedulerService(Service):
    """Fires this engine's schedules; many engines may run it against one Redis.

    It sleeps until the next fire of any schedule (or until a schedule changes), claims
    each due fire in Redis and creates its job through the job manager.
    """

    name = "scheduler"

    def __init__(
        self,
        config: Config,
        bus: EventBus,
        manager: Callable[[], JobManager | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(bus)
        self.config = config
        self._manager = manager
        self.clock = clock
        self.path = config.data_path / "schedules.json"
        self.store = ScheduleStore(self.path)
        self.configured: dict[str, Schedule] = {}
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._claim: Any = None
        # True until the first pass after start, which finishes this engine's own claims.
        self._recovering = True
        # Fires this engine created jobs for since start, by schedule (for /metrics).
        self.fired: dict[str, int] = {}

    def address(self) -> str:
        """Where the schedules are kept."""
        return str(self.path)

    def detail(self) -> str:
        """How many schedules run."""
        return f"{len(self.all())} schedules"

    def all(self) -> dict[str, Schedule]:
        """Every schedule: the config's, then the run-time ones."""
        return {**self.configured, **self.store.runtime}

    async def _start(self) -> None:
        configured = {}
        for name, section in self.config.schedules.items():
            try:
                configured[name] = Schedule.from_config(name, section)
            except ScheduleError as exc:
                raise ServiceStartError(str(exc)) from None
        self.configured = configured
        self.store = await asyncio.to_thread(ScheduleStore.load, self.path)
        manager = self._manager()
        if manager is None:
            raise ServiceStartError("the jobs service is not running")
        self._claim = manager.queue.redis.register_script(_CLAIM)
        for schedule in configured.values():
            try:
                self._check_job(manager, schedule)
            except ValueError as exc:
                raise ServiceStartError(f"schedule {schedule.name!r}: {exc}") from None
        now = self.clock()
        for name in set(self.store.states) - set(self.all()):
            del self.store.states[name]  # a schedule gone from the config
        for name in self.all():
            # A schedule seen for the first time starts now: nothing before it is missed.
            self.store.states.setdefault(name, ScheduleState(last_fire=now))
        await asyncio.to_thread(self.store.save)
        self.supervise("fire", self._run)

    async def _stop(self) -> None:
        await self.stop_supervised()

    # -- run-time changes ------------------------------------------------------------------

    def infos(self) -> list[ScheduleInfo]:
        """Every schedule with its state, by name."""
        now = self.clock()
        out = []
        for name, schedule in sorted(self.all().items()):
            state = self.store.states.get(name) or ScheduleState(last_fire=now)
            out.append(
                ScheduleInfo(
                    schedule,
                    state.paused,
                    state.last_fire,
                    schedule.next_fire(max(state.last_fire, now)),
                    state.fires,
                    state.last_job,
                )
            )
        return out

    async def add_fields(self, fields: dict[str, Any]) -> ScheduleInfo:
        """Add a run-time schedule from its fields (ScheduleError for a bad one)."""
        try:
            schedule = Schedule(**fields)
        except TypeError as exc:
            raise ScheduleError(str(exc)) from None
        return await self.add(schedule)

    async def add(self, schedule: Schedule) -> ScheduleInfo:
        """Add (or replace) a run-time schedule; its first fire is after now."""
        schedule = replace(schedule, source="runtime").check()
        if schedule.name in self.configured:
            raise ScheduleError(f"schedule {schedule.name!r} is defined in the config")
        manager = self._manager()
        if manager is not None:
            # Refused now, with line and column, rather than at every fire.
            self._check_job(manager, schedule)
        async with self._lock:
            self.store.runtime[schedule.name] = schedule
            self.store.states[schedule.name] = ScheduleState(last_fire=self.clock())
            await asyncio.to_thread(self.store.save)
        self._changed.set()
        return self.info(schedule.name)

    @staticmethod
    def _check_job(manager: JobManager, schedule: Schedule) -> None:
        """Refuse a schedule whose jobs the manager would refuse (bad params, queue name)."""
        manager._check(schedule.job_spec())

    def info(self, name: str) -> ScheduleInfo:
        """One schedule with its state; KeyError when there is none of that name."""
        for found in self.infos():
            if found.schedule.name == name:
                return found
        raise KeyError(name)

    async def set_paused(self, name: str, paused: bool) -> ScheduleInfo:
        """Pause or resume; fires that fall while paused are not made up for."""
        if name not in self.all():
            raise KeyError(name)
        async with self._lock:
            state = self.store.states.setdefault(name, ScheduleState())
            state.paused = paused
            if not paused:
                state.last_fire = max(state.last_fire, self.clock())
            await asyncio.to_thread(self.store.save)
        self._changed.set()
        return self.info(name)

    async def remove(self, name: str) -> None:
        """Remove a run-time schedule (config ones are removed from the config)."""
        if name in self.configured:
            raise ScheduleError(f"schedule {name!r} is defined in the config")
        if name not in self.store.runtime:
            raise KeyError(name)
        async with self._lock:
            del self.store.runtime[name]
            self.store.states.pop(name, None)
            await asyncio.to_thread(self.store.save)
        self._changed.set()

    # -- firing ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            await self.fire_due()
            wait = self._seconds_to_next()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)

    def _seconds_to_next(self) -> float:
        now = self.clock()
        nexts = [
            s.next_fire(max(self.store.states[n].last_fire, now))
            for n, s in self.all().items()
            if n in self.store.states and not self.store.states[n].paused
        ]
        if not nexts:
            return MAX_SLEEP_SECONDS
        return min(MAX_SLEEP_SECONDS, max(0.0, min(nexts) - now))

    async def fire_due(self) -> int:
        """Claim and run every fire due now; the number of jobs this engine created."""
        created = 0
        async with self._lock:
            now = self.clock()
            changed = False
            for name, schedule in self.all().items():
                state = self.store.states.setdefault(name, ScheduleState(last_fire=now))
                if state.paused:
                    continue
                fires = due_fires(schedule, state.last_fire, now)
                if self._recovering:
                    fires = await self._own_unfinished(schedule, state.last_fire, now, fires)
                if not fires and schedule.next_fire(state.last_fire) <= now:
                    # Missed fires the policy drops are handled all the same.
                    state.last_fire = now
                    changed = True
                for fire in fires:
                    job_id = await self._fire(schedule, fire, now)
                    if job_id:
                        created += 1
                        state.fires += 1
                        state.last_job = job_id
                    state.last_fire = fire
                    changed = True
            self._recovering = False
            if changed:
                await asyncio.to_thread(self.store.save)
        return created

    async def _own_unfinished(
        self, schedule: Schedule, last: float, now: float, chosen: list[float]
    ) -> list[float]:
        """`chosen` plus the fires the policy drops that this engine claimed before it stopped.

        Only on the first pass after start: such a claim is this engine's alone to finish
        (its job may be in this engine's history), so the missed policy does not drop it.
        """
        redis = self._manager_redis()
        mine = f"claim:{self.store.engine_id}".encode()
        dropped = [t for t in schedule.fires_between(last, now) if t not in chosen]
        if not dropped:
            return chosen
        try:
            values = await redis.mget([keys.fired_key(schedule.name, t) for t in dropped])
        except RedisError:
            return chosen
        return sorted({*chosen, *(t for t, v in zip(dropped, values, strict=True) if v == mine)})

    async def _fire(self, schedule: Schedule, fire: float, now: float) -> int:
        """Claim one fire; create its job when the claim is ours. The job id, or 0."""
        manager = self._manager()
        if manager is None:
            return 0
        mine = f"claim:{self.store.engine_id}"
        retention = schedule.retention(now)
        try:
            won, value = await self._claim(
                keys=[keys.fired_key(schedule.name, fire), keys.schedule_mark_key(schedule.name)],
                args=[repr(fire), mine, int(retention * 1000), retention],
            )
        except RedisError as exc:
            # Without a claim the fire cannot be made safely; it counts as missed.
            self.emit_log(logging.WARNING, f"schedule {schedule.name}: cannot claim: {exc}")
            return 0
        value = value.decode() if isinstance(value, bytes) else str(value)
        if not won:
            if value != mine:
                return 0  # another engine's fire (or one this engine finished)
            # This engine claimed it before and stopped before noting the job: made or not?
            found = await self._find_job(manager, schedule, fire)
            if found:
                await self._note(schedule, fire, found, retention)
                return 0
        try:
            specs = [schedule.job_spec()]
            job = (await manager.create_jobs(specs, schedule=schedule.name, fire_time=fire))[0]
        except ValueError as exc:
            # Refused (an actor gone since the schedule was added): the fire is lost, said
            # once here, rather than retried at every pass.
            self.emit_log(logging.ERROR, f"schedule {schedule.name}: job refused: {exc}")
            return 0
        await self._note(schedule, fire, job.job_id, retention)
        self.fired[schedule.name] = self.fired.get(schedule.name, 0) + 1
        return job.job_id

    async def _note(self, schedule: Schedule, fire: float, job_id: int, retention: float) -> None:
        with contextlib.suppress(RedisError):  # the claim stands; only its value is lost
            await self._manager_redis().set(
                keys.fired_key(schedule.name, fire),
                f"job:{self.store.engine_id}:{job_id}",
                xx=True,
                px=int(retention * 1000),
            )

    def _manager_redis(self) -> Any:
        manager = self._manager()
        assert manager is not None
        return manager.queue.redis

    @staticmethod
    async def _find_job(manager: JobManager, schedule: Schedule, fire: float) -> int:
        """The id of this schedule's job for `fire` among the queue's newest jobs, or 0.

        Read from this engine's own history, not Redis: another engine on the same Redis
        counts its ids on its own, so a live job under the same id may be its.
        """
        narrowing = JobFilter(circle=schedule.circle, topic=schedule.topic)

        def newest() -> dict[int, Job]:
            return manager.read_many(manager.index.query(narrowing, limit=200, before_id=None))

        for job in (await asyncio.to_thread(newest)).values():
            if job.schedule == schedule.name and abs(job.fire_time - fire) < 1e-3:
                return job.job_id
        return 0
