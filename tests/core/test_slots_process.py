"""The terminal app's engine runs its job slots in a child process that dies with it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.config import Config
from core.engine import Engine
from core.redis_server.process import pid_alive
from core.watchdog.process import ChildWatchDogService
from core.watchdog.service import WatchDogService
from tests.helpers import ValkeyProcess, async_wait_for, wait_job_ended

ROOT = Path(__file__).resolve().parents[2]


def _parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid in /proc/{pid}/status")


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie waiting for whoever adopted it."""
    if not pid_alive(pid):
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
async def app_engine(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine built the way the terminal app builds it."""
    config = replace(engine_config, enable_webdav=False, enable_ui=False)
    async with Engine(config, fail_fast=False, child_slots=True) as running:
        yield running


async def test_app_engine_runs_jobs_in_a_child_that_stops_with_it(app_engine: Engine) -> None:
    slots = app_engine.watchdog
    assert isinstance(slots, ChildWatchDogService)
    pid = slots.pid()
    assert pid is not None
    assert pid != os.getpid()
    assert _parent_of(pid) == os.getpid()
    view = await app_engine.api.submit("!!fake.return_success\n", topic="child")
    ended = await wait_job_ended(app_engine, view.job_id, 30)
    assert ended.status == "done"
    # The child ran it: the job names the worker the child registered, not a thread here.
    assert ended.worker == slots.address()
    assert f":{pid}:" in ended.worker
    await app_engine.stop()
    assert slots.pid() is None
    assert _gone(pid)


async def test_a_cancel_reaches_the_child(app_engine: Engine) -> None:
    slots = app_engine.watchdog
    assert isinstance(slots, ChildWatchDogService)
    view = await app_engine.api.submit("!!fake.sleep seconds:60\n", topic="child")
    await async_wait_for(lambda: slots.busy_slots == 1, 30, "the child to take the job")
    cancelled = await app_engine.api.cancel(view.job_id)
    assert (cancelled.status, cancelled.error) == ("error", "cancelled")
    await async_wait_for(lambda: slots.busy_slots == 0, 30, "the child to free its slot")


async def test_a_drain_lets_the_childs_job_finish(app_engine: Engine) -> None:
    slots = app_engine.watchdog
    assert isinstance(slots, ChildWatchDogService)
    # The child reports its busy slots every half second (STATS_SECONDS): a job much
    # longer than that still runs when the drain reaches it (a 0.5 s one had ended on a
    # busy CI).
    view = await app_engine.api.submit("!!fake.sleep seconds:3\n", topic="child")
    await async_wait_for(lambda: slots.busy_slots == 1, 30, "the child to take the job")
    said: list[str] = []
    assert await app_engine.drain(say=said.append) == 0
    assert said[-1] == "drained: all 1 running jobs finished"
    assert (await wait_job_ended(app_engine, view.job_id, 30)).status == "done"


async def test_a_child_that_dies_comes_back(app_engine: Engine) -> None:
    slots = app_engine.watchdog
    assert isinstance(slots, ChildWatchDogService)
    first = slots.pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await async_wait_for(lambda: slots.respawns == 1 and slots.pid() is not None, 60, "a new child")
    assert slots.pid() != first
    view = await app_engine.api.submit("!!fake.return_success\n", topic="child")
    assert (await wait_job_ended(app_engine, view.job_id, 30)).status == "done"


async def test_worker_process_false_keeps_the_slots_in_process(engine_config: Config) -> None:
    config = replace(engine_config, jobs=replace(engine_config.jobs, worker_process=False))
    engine = Engine(config, fail_fast=False, child_slots=True)
    assert isinstance(engine.watchdog, WatchDogService)
    # Headless engines (serve, tests) keep them in process whatever the key says.
    assert isinstance(Engine(engine_config).watchdog, WatchDogService)


APP = """
import asyncio, sys
from pathlib import Path
from core.config import load_config
from core.engine import Engine

async def main():
    config = load_config(Path(sys.argv[1]), env={}, flags={"data_dir": sys.argv[2],
        "redis.url": sys.argv[3], "enable_webdav": False, "enable_ui": False}).config
    engine = Engine(config, fail_fast=False, child_slots=True)
    await engine.start()
    print(engine.watchdog.pid(), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_the_child_dies_when_the_app_is_killed(
    engine_config: Config, valkey: ValkeyProcess, short_tmp: Path
) -> None:
    # An outside server: the app's own would be left behind by the SIGKILL.
    argv = [sys.executable, "-c", APP, str(short_tmp / "none.toml"), engine_config.data_dir]
    app = subprocess.Popen(
        [*argv, valkey.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(app.stdout.readline), 60)
        child = int(line)
        assert _parent_of(child) == app.pid
        app.kill()
        app.wait()
        await async_wait_for(lambda: _gone(child), 30, "the child to die with the app")
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
