"""Shared test helpers: free ports, deadline polling, waiting for jobs, a real valkey-server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from bench.launch import free_port as free_port  # the tests take it from here
from bench.launch import heroagent_argv, stop_process
from core.api import JobView
from core.config import Config
from core.events import JobStateChanged
from core.redis_server.binary import find_server_binary

if TYPE_CHECKING:
    from core.config import Config
    from core.engine import Engine
    from core.jobs.model import Job
    from core.watchdog import WatchDog

T = TypeVar("T")


def short_and_soak(
    names: Sequence[str], short: tuple[object, ...], soak: tuple[object, ...]
) -> pytest.MarkDecorator:
    """Parametrize a test with a short case for the default run and a long soak marked slow."""
    cases = [pytest.param(*short), pytest.param(*soak, marks=pytest.mark.slow)]
    return pytest.mark.parametrize(names, cases)


def headless_config(
    config: Config, *, actor_modules: list[str] | None = None, **jobs: Any
) -> Config:
    """`config` without WebDAV and the UI, with these `jobs` fields and actor modules."""
    config = replace(
        config, enable_webdav=False, enable_ui=False, jobs=replace(config.jobs, **jobs)
    )
    if actor_modules is None:
        return config
    return replace(config, actors=replace(config.actors, modules=actor_modules))


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


async def async_wait_for(
    predicate: Callable[[], T], seconds: float = 10.0, what: str = "condition"
) -> T:
    """Like wait_for, without blocking the event loop."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.01)


async def async_poll(
    check: Callable[[], Awaitable[T]], seconds: float = 10.0, what: str = "condition"
) -> T:
    """Like async_wait_for, for a check that has to await (a Redis or engine read)."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def engine_with_actors(config: Config, *modules: str) -> AsyncIterator[Engine]:
    """A running engine (jobs only: no WebDAV, no UI) that also has these actor modules."""
    from core.engine import Engine

    config = replace(
        config,
        enable_webdav=False,
        enable_ui=False,
        actors=replace(config.actors, modules=list(modules)),
    )
    async with Engine(config) as running:
        yield running


async def wait_jobs_ended(engine: Engine, job_ids: Iterable[int], seconds: float = 10.0) -> None:
    """Wait, on the engine's events, until the end of every job is stored in OurDB.

    A job's `done`/`error` event is published after its version is durable, so the
    event is the signal; stored states are read once at the start (and again if the
    subscription ever dropped events), never polled.
    """
    pending = set(job_ids)
    with engine.bus.subscribe(maxsize=1_000_000) as events:
        # Subscribed first, then read: an end in between is not missed.
        await _drop_stored_ends(engine, pending)
        dropped = 0
        try:
            async with asyncio.timeout(seconds):
                while pending:
                    for event in await events.get_batch():
                        if isinstance(event, JobStateChanged) and event.status in ENDED:
                            pending.discard(event.job_id)
                    if events.dropped != dropped:
                        dropped = events.dropped
                        await _drop_stored_ends(engine, pending)
        except TimeoutError:
            example = min(pending)
            raise AssertionError(
                f"{len(pending)} jobs did not end within {seconds} s, e.g. job {example} "
                f"({(await engine.api.job(example)).status})"
            ) from None


async def wait_job_ended(engine: Engine, job_id: int, seconds: float = 10.0) -> JobView:
    """Wait until the job's end is stored in OurDB; return the job as it ended."""
    await wait_jobs_ended(engine, [job_id], seconds)
    return await engine.api.job(job_id)


ENDED = ("done", "error")


async def _drop_stored_ends(engine: Engine, pending: set[int]) -> None:
    for job_id in list(pending):
        if (await engine.jobs.stored_job(job_id)).status.ended:
            pending.discard(job_id)


def run_heroagent(
    *args: str,
    python: str = sys.executable,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`heroagent *args` in a child process, with its output captured as text."""
    return subprocess.run(
        [python, "-m", "heroagent_tui", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def check_fails_then_passes(
    run: Callable[..., subprocess.CompletedProcess[str]],
    language: str,
    bad: tuple[Path, str],
    good: tuple[Path, str],
) -> str:
    """`heroagent <language> check` fails on the bad and the good file, passes on the good one.

    Both are (path, text) pairs, written first; the failing check's stdout is returned.
    """
    for path, text in (bad, good):
        path.write_text(text)
    out = run(language, "check", str(bad[0]), str(good[0]))
    assert out.returncode == 1
    ok = run(language, "check", str(good[0]))
    assert (ok.returncode, ok.stdout.strip()) == (0, "1 file(s) OK")
    return out.stdout


def spawn_worker(url: str, data: Path, **env: str) -> subprocess.Popen[bytes]:
    """A real `heroagent worker` on the engine at `url`, with `env` added to its environment."""
    return subprocess.Popen(
        heroagent_argv(data, "--redis-url", url, "worker"),
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def pid_running(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def valkey_pids() -> set[int]:
    """Pids of every running valkey/redis server on this machine (to compare before/after)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if exe.endswith(("valkey-server", "redis-server")) and pid_running(int(entry.name)):
            pids.add(int(entry.name))
    return pids


@dataclass
class ValkeyProcess:
    """A valkey-server a test started; stopped by its pid."""

    port: int
    socket_path: Path
    pid: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        # SHUTDOWN acts at once, where SIGTERM waits for the server's next cron tick (up to
        # 0.1 s); asked over its own socket, and only while it runs, so no other server
        # that took the port since can be told. Refused (a password), SIGTERM does it.
        if self.process.poll() is None:
            with (
                contextlib.suppress(OSError),
                socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn,
            ):
                conn.settimeout(1.0)
                conn.connect(str(self.socket_path))
                conn.sendall(b"SHUTDOWN NOSAVE\r\n")
                conn.recv(64)
        stop_process(self.process, 5)


def start_valkey(directory: Path, port: int | None = None) -> ValkeyProcess:
    """Start a real valkey-server on a free port with its data in `directory`."""
    binary = find_server_binary()
    port = port or free_port()
    socket_path = directory / "v.sock"
    process = subprocess.Popen(
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(socket_path),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = ValkeyProcess(port, socket_path, process.pid, process)
    try:
        wait_for(lambda: _pings(port), 10.0, f"valkey-server on port {port}")
    except AssertionError:
        server.stop()
        raise
    return server


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def idle_config(engine_config: Config, valkey: ValkeyProcess, **jobs: Any) -> Config:
    """The config of `idle_engine`; `jobs` sets more `[jobs]` keys."""
    return replace(
        engine_config,
        enable_webdav=False,
        enable_ui=False,
        redis=replace(engine_config.redis, url=valkey.url),
        jobs=replace(engine_config.jobs, worker_count=0, **jobs),
    )


@contextlib.asynccontextmanager
async def running_watchdog(
    engine: Engine, worker_count: int, lease_seconds: float | None = None
) -> AsyncIterator[WatchDog]:
    """A started watchdog with `worker_count` slots on the engine's server, stopped after.

    With `lease_seconds`, its lease is that long instead of the config's.
    """
    from core.watchdog import WatchDog
    from core.watchdog.service import build_processors, build_registry, watchdog_settings

    config = replace(engine.config, jobs=replace(engine.config.jobs, worker_count=worker_count))
    settings = watchdog_settings(config)
    if lease_seconds is not None:
        settings = replace(settings, lease_seconds=lease_seconds)
    dog = WatchDog(
        engine.redis.loop_client(), build_processors(config, build_registry(config)), settings
    )
    await dog.start()
    try:
        yield dog
    finally:
        await dog.stop()
        await dog.redis.aclose()


def one_slot_dog(engine: Engine, lease_seconds: float) -> AbstractAsyncContextManager[WatchDog]:
    """A started one-slot watchdog on the engine's server, with this lease; stopped at the end."""
    return running_watchdog(engine, 1, lease_seconds)


@contextlib.asynccontextmanager
async def one_slot_busy(engine: Engine, lease_seconds: float) -> AsyncIterator[BusySlot]:
    """A started one-slot watchdog on the engine's server, running a 30 s sleep job.

    The lease is short, so its heartbeat checks come quickly; stopped at the end.
    """
    async with one_slot_dog(engine, lease_seconds) as dog:
        job = await engine.jobs.create_job("t", "!!fake.sleep seconds:30\n")
        await async_wait_for(lambda: job.job_id in dog.running, 10, "the slot to be busy")
        yield BusySlot(dog, job)


@dataclass
class BusySlot:
    """A watchdog and the job that keeps its one slot busy."""

    dog: WatchDog
    job: Job
