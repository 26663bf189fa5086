"""Schedules across real engines: two `heroagent --serve` on one valkey, a SIGKILL, a FLUSHALL.

Each fire time must yield exactly one job, counted in both engines' OurDB histories once
they have stopped.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.jobs.model import Job
from core.ourdb.db import OurDB
from tests.helpers import ValkeyProcess, wait_for

SCHEDULES = {"tick": 'every = "1s"', "cron": 'cron = "* * * * * *"'}


class Engine:
    """One `heroagent --serve` child with its own data dir and config file."""

    def __init__(self, home: Path, valkey: ValkeyProcess) -> None:
        self.home = home
        home.mkdir(exist_ok=True)
        self.data = home / "data"
        self.config = home / "config.toml"
        lines = [
            "enable_webdav = false",
            "enable_ui = false",
            "[redis]",
            f'url = "{valkey.url}"',
            "[jobs]",
            # Nothing runs the jobs: the test counts them, and the two engines' histories
            # stay apart (their ids overlap, each OurDB counting on its own).
            "worker_count = 0",
        ]
        for name, when in SCHEDULES.items():
            lines += [f"[schedules.{name}]", when, f'topic = "{name}"', 'params = "!!core.echo\\n"']
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = (self.home / f"serve{self.runs}.log").open("wb")
        argv = [sys.executable, "-m", "heroagent_tui", "--config", str(self.config)]
        self.proc = subprocess.Popen(
            [*argv, "--data-dir", str(self.data), "--serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self) -> None:
        assert self.proc is not None
        proc = self.proc
        wait_for(lambda: "ready" in self.output or proc.poll() is not None, 30, "ready")
        assert proc.poll() is None, self.output

    @property
    def output(self) -> str:
        return (self.home / f"serve{self.runs}.log").read_text(errors="replace")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def scheduled_jobs(self) -> list[Job]:
        """Every job of this engine's history that a schedule made (read after it stopped)."""
        with OurDB(self.data / "jobsdb", readonly=True) as db:
            # Its live ids: a start skips the ids the other engine has queued.
            jobs = [Job.from_json(db.get(i), i) for i in db]
        return [job for job in jobs if job.schedule]


@pytest.fixture
def engines(short_tmp: Path, valkey: ValkeyProcess) -> Iterator[tuple[Engine, Engine]]:
    pair = (Engine(short_tmp / "a", valkey), Engine(short_tmp / "b", valkey))
    try:
        yield pair
    finally:
        for engine in pair:
            engine.stop()


def _fired(client: redis.Redis, schedule: str) -> int:
    """Fires claimed since the last FLUSHALL (each claim key is one fire)."""
    return sum(1 for _ in client.scan_iter(f"heroagent:fired:{schedule}:*", count=1_000))


def _wait_fires(client: redis.Redis, more: int, seconds: float) -> None:
    """Wait until each schedule has `more` claimed fires than now, with a deadline."""
    start = {name: _fired(client, name) for name in SCHEDULES}
    wait_for(
        lambda: all(_fired(client, n) >= start[n] + more for n in SCHEDULES),
        seconds,
        f"{more} more fires",
    )


def _run(engines: tuple[Engine, Engine], valkey: ValkeyProcess, phase: int) -> None:
    a, b = engines
    client = redis.Redis.from_url(valkey.url)
    began = time.time()
    # Both start at once: each is ready in a second or two, and they race for the fires.
    b.start()
    a.start()
    b.wait_ready()
    a.wait_ready()
    _wait_fires(client, phase, phase + 5)
    a.kill()  # mid-way: B goes on alone, A's history and schedules.json stay as they were
    _wait_fires(client, phase, phase + 5)
    a.start()  # the same data dir: A finishes any claim it left behind
    a.wait_ready()
    _wait_fires(client, phase, phase + 5)
    # Between fires: a FLUSHALL in the milliseconds while both engines claim the same
    # fire erases the first claim before the second is tried (docs/schedules.md).
    wait_for(lambda: 0.3 < time.time() % 1 < 0.7, 2, "the middle of a second")
    client.flushall()  # the schedules live in the data dirs: they keep firing
    _wait_fires(client, phase, phase + 5)
    b.stop()
    a.stop()
    ended = time.time()
    jobs = a.scheduled_jobs() + b.scheduled_jobs()
    for name in SCHEDULES:
        fires = sorted(job.fire_time for job in jobs if job.schedule == name)
        doubled = [t for t, n in Counter(fires).items() if n > 1]
        assert not doubled, f"{name}: fires with more than one job: {doubled}"
        assert fires, name
        assert began - 1 <= fires[0]
        assert fires[-1] <= ended
        # Not one second left out between the first fire and the last.
        gaps = [t for t, nxt in itertools.pairwise(fires) if nxt - t != 1.0]
        assert not gaps, f"{name}: fires missing after {gaps}"
        assert len(fires) >= 4 * phase, (name, len(fires))
    assert os.stat(a.data / "schedules.json").st_mode & 0o777 == 0o600


def test_two_engines_a_kill_and_a_flushall_make_one_job_per_fire(
    engines: tuple[Engine, Engine], valkey: ValkeyProcess
) -> None:
    _run(engines, valkey, 1)


@pytest.mark.slow
def test_two_engines_for_ten_seconds_make_one_job_per_fire(
    engines: tuple[Engine, Engine], valkey: ValkeyProcess
) -> None:
    _run(engines, valkey, 3)
