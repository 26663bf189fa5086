"""Schedules: parsing, fire times, missed-fire policies, durable state and one job per fire."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.api import JobRefused, JobSpec
from core.config import Config, ConfigError, ScheduleConfig, load_config
from core.engine import Engine, EngineStartError
from core.jobs import keys
from core.jobs.scheduler import (
    _CLAIM,
    Schedule,
    ScheduleError,
    SchedulerService,
    ScheduleStore,
    due_fires,
    parse_every,
)

T0 = 1_800_000_000.0  # a Unix time on a whole minute (and a multiple of 10 s)


def tick(every: str = "10s", **kw: object) -> Schedule:
    return Schedule(name="tick", params="!!core.echo\n", topic="t", every=every, **kw).check()  # type: ignore[arg-type]


def test_every_reads_units_with_or_without_the_word() -> None:
    assert parse_every("every 10s") == 10.0
    assert parse_every("5m") == 300.0
    assert parse_every("every 1.5h") == 5_400.0
    assert parse_every("250ms") == 0.25
    assert parse_every("EVERY 2d") == 172_800.0
    for bad in ("every", "10", "10 x", "every -1s", "0s", "every 10 s and more"):
        with pytest.raises(ScheduleError):
            parse_every(bad)


def test_intervals_fire_on_multiples_of_the_interval_so_every_engine_agrees() -> None:
    s = tick("10s")
    assert s.next_fire(T0) == T0 + 10
    assert s.next_fire(T0 + 3.7) == T0 + 10
    assert s.fires_between(T0, T0 + 30) == [T0 + 10, T0 + 20, T0 + 30]


def test_cron_with_seconds_as_a_sixth_field() -> None:
    s = replace(tick(), every="", cron="* * * * * */15").check()
    assert s.fires_between(T0, T0 + 60) == [T0 + 15, T0 + 30, T0 + 45, T0 + 60]
    every_second = replace(s, cron="* * * * * *").check()
    assert every_second.fires_between(T0 + 0.5, T0 + 3) == [T0 + 1, T0 + 2, T0 + 3]


def test_cron_is_read_in_the_schedules_time_zone_across_daylight_saving() -> None:
    zone = ZoneInfo("Europe/Brussels")
    s = replace(tick(), every="", cron="0 9 * * *", tz="Europe/Brussels").check()
    # The last Sunday of March 2026 moves Brussels from UTC+1 to UTC+2.
    before = datetime(2026, 3, 28, 0, tzinfo=zone).timestamp()
    first = s.next_fire(before)
    second = s.next_fire(first)
    assert datetime.fromtimestamp(first, zone).hour == 9
    assert datetime.fromtimestamp(second, zone).hour == 9
    assert second - first == 23 * 3_600  # the day of the change has 23 hours
    utc = replace(s, tz="UTC")
    assert utc.next_fire(before) - first == 3_600


def test_bad_definitions_are_refused() -> None:
    for bad in (
        dict(every="", cron=""),
        dict(every="10s", cron="* * * * *"),
        dict(every="", cron="not cron"),
        dict(every="", cron="* * * * * * *"),
        dict(tz="Mars/Olympus"),
        dict(missed="twice"),
        dict(name="no spaces"),
        dict(timeout=0.0),
    ):
        with pytest.raises(ScheduleError):
            replace(tick(), **bad).check()


def test_missed_fires_run_once_by_default_each_with_all_and_none_with_skip() -> None:
    latest = tick("10s")
    # The engine was down from T0 to T0 + 65: six fires fell while it was.
    assert due_fires(latest, T0, T0 + 65) == [T0 + 60]
    assert due_fires(replace(latest, missed="all"), T0, T0 + 65) == [
        T0 + t for t in (10, 20, 30, 40, 50, 60)
    ]
    assert due_fires(replace(latest, missed="skip"), T0, T0 + 65) == []
    # On time (the usual wake-up at the fire time) every policy runs the fire.
    for policy in ("latest", "all", "skip"):
        assert due_fires(replace(latest, missed=policy), T0, T0 + 10.01) == [T0 + 10]
    assert due_fires(latest, T0, T0 + 9.9) == []


def test_the_store_is_written_atomically_and_private(tmp_path: Path) -> None:
    path = tmp_path / "schedules.json"
    store = ScheduleStore.load(path)
    store.runtime["tick"] = replace(tick(), source="runtime")
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ScheduleStore.load(path)
    assert again.engine_id == store.engine_id
    assert again.runtime == store.runtime
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_config_tables_are_read_and_unknown_keys_refused(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text(
        '[schedules.nightly]\ncron = "0 2 * * *"\ntz = "Europe/Brussels"\n'
        'topic = "backup"\nparams = "!!core.echo\\n"\ntimeout = 600\nmissed = "skip"\n'
    )
    section = load_config(file, env={}).config.schedules["nightly"]
    s = Schedule.from_config("nightly", section)
    assert (s.cron, s.tz, s.timeout, s.missed, s.source) == (
        "0 2 * * *",
        "Europe/Brussels",
        600.0,
        "skip",
        "config",
    )
    file.write_text('[schedules.x]\nevery = "1s"\ntopic = "t"\ncrom = "typo"\n')
    with pytest.raises(ConfigError, match="did you mean 'cron'"):
        load_config(file, env={})
    file.write_text('[schedules.x]\ntopic = "t"\n')
    with pytest.raises(ConfigError, match="exactly one of"):
        load_config(file, env={})


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _scheduler(engine: Engine, data: Path, clock: Clock) -> SchedulerService:
    config = replace(engine.config, data_dir=str(data))
    service = SchedulerService(config, engine.bus, lambda: engine.jobs, clock=clock)
    # Started by hand: the loop would fire on the real clock, these tests step their own.
    service.configured = {}
    service.store = ScheduleStore.load(service.path)
    service._claim = engine.jobs.queue.redis.register_script(_CLAIM)
    return service


async def _ticking(engine: Engine, data: Path, name: str) -> tuple[Clock, SchedulerService]:
    """A scheduler on a clock stopped at T0, with one 10 s schedule `name` on topic sched."""
    clock = Clock(T0)
    service = await _scheduler(engine, data, clock)
    await service.add(replace(tick("10s"), name=name, topic="sched"))
    return clock, service


async def _scheduled_jobs(engine: Engine) -> list[tuple[str, float]]:
    jobs = await engine.api.jobs(limit=500)
    return sorted((j.schedule, j.fire_time) for j in jobs if j.schedule)


async def test_two_schedulers_make_one_job_per_fire(engine: Engine, short_tmp: Path) -> None:
    clock = Clock(T0)
    a = await _scheduler(engine, short_tmp / "a", clock)
    b = await _scheduler(engine, short_tmp / "b", clock)
    for s in (a, b):
        await s.add(replace(tick("10s"), name="both", topic="sched"))
    for step in range(1, 4):
        clock.now = T0 + 10 * step + 0.01
        made = await a.fire_due() + await b.fire_due()
        assert made == 1
    assert await _scheduled_jobs(engine) == [("both", T0 + 10 * s) for s in (1, 2, 3)]
    # The engine that lost a fire notes it as handled all the same.
    assert b.store.states["both"].last_fire == T0 + 30


async def test_an_unfinished_claim_of_this_engine_is_made_good_once(
    engine: Engine, short_tmp: Path
) -> None:
    clock, a = await _ticking(engine, short_tmp / "a", "crashy")
    redis = engine.jobs.queue.redis
    # A crash after the claim and before the job: the claim names this engine, no job.
    await redis.set(keys.fired_key("crashy", T0 + 10), f"claim:{a.store.engine_id}")
    clock.now = T0 + 10.01
    assert await a.fire_due() == 1
    assert await _scheduled_jobs(engine) == [("crashy", T0 + 10)]
    # A crash after the job and before noting it: the job is found, not made again.
    await redis.set(keys.fired_key("crashy", T0 + 20), f"claim:{a.store.engine_id}")
    await engine.jobs.create_jobs(
        [JobSpec("!!core.echo\n", topic="sched")], schedule="crashy", fire_time=T0 + 20
    )
    clock.now = T0 + 20.01
    assert await a.fire_due() == 0
    assert await _scheduled_jobs(engine) == [("crashy", T0 + 10), ("crashy", T0 + 20)]
    value = await redis.get(keys.fired_key("crashy", T0 + 20))
    assert isinstance(value, bytes)
    assert value.decode().startswith(f"job:{a.store.engine_id}:")


async def test_a_restart_after_downtime_runs_the_latest_missed_fire_once(
    engine: Engine, short_tmp: Path
) -> None:
    clock, _ = await _ticking(engine, short_tmp / "a", "late")
    clock.now = T0 + 95
    again = await _scheduler(engine, short_tmp / "a", clock)
    assert await again.fire_due() == 1
    assert await again.fire_due() == 0
    assert await _scheduled_jobs(engine) == [("late", T0 + 90)]


async def test_pause_resume_and_remove(engine: Engine, short_tmp: Path) -> None:
    clock, a = await _ticking(engine, short_tmp / "a", "p")
    await a.set_paused("p", True)
    clock.now = T0 + 30.01
    assert await a.fire_due() == 0
    await a.set_paused("p", False)
    assert await a.fire_due() == 0  # fires that fell while paused are not made up for
    clock.now = T0 + 40.01
    assert await a.fire_due() == 1
    await a.remove("p")
    with pytest.raises(KeyError):
        await a.remove("p")
    assert a.infos() == []


async def test_a_restart_finishes_its_own_claim_the_missed_policy_would_drop(
    engine: Engine, short_tmp: Path
) -> None:
    clock, a = await _ticking(engine, short_tmp / "a", "orphan")
    # Claimed at T0 + 10, then the engine died; it comes back at T0 + 95.
    await engine.jobs.queue.redis.set(
        keys.fired_key("orphan", T0 + 10), f"claim:{a.store.engine_id}"
    )
    clock.now = T0 + 95
    again = await _scheduler(engine, short_tmp / "a", clock)
    assert await again.fire_due() == 2
    assert await _scheduled_jobs(engine) == [("orphan", T0 + 10), ("orphan", T0 + 90)]


async def test_params_the_job_manager_would_refuse_are_refused_when_added(
    engine: Engine,
) -> None:
    with pytest.raises(JobRefused) as refused:
        await engine.api.add_schedule("x", topic="t", params="!!no.such_action\n", every="1s")
    assert refused.value.line == 1
    with pytest.raises(JobRefused, match="not a valid name"):
        await engine.api.add_schedule("x", topic="a b", params="!!core.echo\n", every="1s")
    assert engine.api.schedules() == []


async def test_a_config_schedule_with_bad_params_stops_the_start(engine_config: Config) -> None:
    section = ScheduleConfig(params="!!no.such_action\n", topic="t", every="1s")
    config = replace(
        engine_config, enable_webdav=False, enable_ui=False, schedules={"bad": section}
    )
    with pytest.raises(EngineStartError, match="scheduler: schedule 'bad'"):
        async with Engine(config):
            pass


def test_a_long_downtime_is_counted_back_from_now_not_fire_by_fire() -> None:
    week = 7 * 86_400.0
    seconds = replace(tick(), every="", cron="* * * * * *").check()
    assert due_fires(seconds, T0, T0 + week + 0.5) == [T0 + week]
    caught_up = due_fires(replace(seconds, missed="all"), T0, T0 + week)
    assert len(caught_up) == 1_000
    assert caught_up[-1] == T0 + week
    assert due_fires(replace(tick("100ms"), missed="all"), T0, T0 + week)[-1] == T0 + week
