"""Graceful drain: a stop lets running jobs finish for `jobs.drain_seconds`, then hands back."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from core.api import JobView
from core.config import Config, load_config
from core.engine import Engine
from core.jobs import keys
from heroagent import Client
from tests.core.test_serve import Serve, ping, serving
from tests.helpers import (
    ValkeyProcess,
    async_poll,
    async_wait_for,
    free_port,
    wait_for,
    wait_jobs_ended,
)


def submit(server: Serve, params: str, count: int) -> list[int]:
    """Submit `count` jobs to a running `--serve` over its Redis; wait until all run."""
    with Client(f"redis://127.0.0.1:{server.port}", server.password) as client:
        ids = [client.submit(params, topic="drain", timeout=120).job_id for _ in range(count)]
        wait_for(
            lambda: all(job.status == "active" for job in client.get_many(ids)),
            30,
            f"{count} jobs to run",
        )
    return ids


def histories(data: Path, job_ids: Sequence[int]) -> list[list[JobView]]:
    """Each job's versions as OurDB holds them, read by a fresh engine after the process exited."""

    async def read() -> list[list[JobView]]:
        config = load_config(
            Path(os.devnull),
            env={},
            flags={
                "data_dir": str(data),
                "redis.tcp_port": free_port(),
                "jobs.worker_count": 0,
                "enable_ui": False,
                "enable_webdav": False,
            },
        ).config
        async with Engine(config) as engine:
            # The versions OurDB stores, not what Redis still holds.
            return [await engine.api.history(job_id) for job_id in job_ids]

    return asyncio.run(read())


def test_sigterm_lets_running_jobs_finish_then_exits(short_tmp: Path) -> None:
    data = short_tmp / "data"
    with serving(data, env={"HEROAGENT_JOBS_DRAIN_SECONDS": "10"}) as server:
        server.wait_ready()
        ids = submit(server, "!!fake.sleep seconds:2\n", 5)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0, server.output
    assert "draining 5 running jobs for up to 10s; signal again to stop now" in server.output
    assert "drained: all 5 running jobs finished" in server.output
    for versions in histories(data, ids):
        assert [v.status for v in versions][-2:] == ["active", "done"]


def test_jobs_past_the_drain_time_go_back_and_run_after_a_restart(short_tmp: Path) -> None:
    data = short_tmp / "data"
    env = {"HEROAGENT_JOBS_DRAIN_SECONDS": "0.5"}
    with serving(data, env=env) as server:
        server.wait_ready()
        ids = submit(server, "!!fake.sleep seconds:3\n", 2)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0, server.output
    assert "drain time up: 2 of 2 jobs still running go back to their queues" in server.output
    with serving(data, env=env) as again:
        again.wait_ready()
        with Client(f"redis://127.0.0.1:{again.port}", again.password) as client:
            ended = client.wait_many(ids, timeout=30)
        assert [job.status for job in ended] == ["done", "done"]
        again.proc.send_signal(signal.SIGTERM)
        assert again.proc.wait(30) == 0, again.output
    for versions in histories(data, ids):
        # The first attempt was handed back unfinished; the second ran to the end.
        assert [v.status for v in versions] == ["new", "active", "new", "active", "done"]
        assert versions[1].worker != versions[3].worker


def test_a_second_sigterm_during_the_drain_stops_at_once(short_tmp: Path) -> None:
    with serving(short_tmp / "data", env={"HEROAGENT_JOBS_DRAIN_SECONDS": "60"}) as server:
        server.wait_ready()
        submit(server, "!!fake.sleep seconds:60\n", 2)
        server.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining 2 running jobs" in server.output, 10, "the drain to begin")
        server.proc.send_signal(signal.SIGTERM)
        # Far below the drain time: the second signal ended it.
        assert server.proc.wait(15) == 1, server.output
    assert "second SIGTERM: stopping at once" in server.output
    assert "stopping without waiting for the running jobs" in server.output
    assert "stopped" in server.output.splitlines()[-1], server.output


@contextmanager
def worker(url: str, data: Path, drain_seconds: str) -> Iterator[subprocess.Popen[str]]:
    """A real `heroagent worker` on the shared server, its output kept for the asserts."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "heroagent_tui", "--config", os.devnull),
            *("--data-dir", str(data), "--redis-url", url, "worker"),
        ],
        env={**os.environ, "HEROAGENT_JOBS_DRAIN_SECONDS": drain_seconds},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


async def _all_active(engine: Engine, ids: Sequence[int]) -> bool:
    return all(view.status == "active" for view in await engine.api.jobs_by_id(ids))


async def test_sigterm_to_a_worker_lets_its_jobs_finish(
    idle_engine: Engine, valkey: ValkeyProcess, short_tmp: Path
) -> None:
    engine = idle_engine
    with worker(valkey.url, short_tmp / "worker", "10") as proc:
        views = [await engine.api.submit("!!fake.sleep seconds:2\n", topic="w") for _ in range(3)]
        ids = [view.job_id for view in views]
        await async_poll(lambda: _all_active(engine, ids), 30, "the worker to run the jobs")
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    assert proc.returncode == 0, output
    assert "draining 3 running jobs for up to 10s" in output
    assert "drained: all 3 running jobs finished" in output
    await wait_jobs_ended(engine, ids, 10)
    assert [view.status for view in await engine.api.jobs_by_id(ids)] == ["done"] * 3


async def test_a_second_sigterm_to_a_worker_hands_its_jobs_back_at_once(
    idle_engine: Engine, valkey: ValkeyProcess, short_tmp: Path
) -> None:
    engine = idle_engine
    with worker(valkey.url, short_tmp / "worker", "60") as proc:
        view = await engine.api.submit("!!fake.sleep seconds:60\n", topic="w", timeout=120)
        await async_poll(lambda: _all_active(engine, [view.job_id]), 30, "the worker to run it")
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout is not None
        # The drain's first line is out: the second signal lands during the drain.
        line = ""
        while "draining" not in line:
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, "the worker ended before it drained"
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=15)
    assert proc.returncode == 1, output
    assert "second SIGTERM: stopping at once" in output

    async def queued() -> bool:
        return (await engine.api.job(view.job_id)).status == "new"

    # No worker is left to take it: handed back, it waits in its queue.
    await async_poll(queued, 10, "the job to go back to its queue")


async def test_a_drain_takes_no_new_jobs_and_returns_at_once_when_none_run(
    engine: Engine,
) -> None:
    (dispatch,) = [t for t in asyncio.all_tasks() if t.get_name() == "watchdog-dispatch"]
    assert await engine.drain() == 0
    later = await engine.api.submit("!!fake.sleep seconds:0\n", topic="d")
    # The job's doorbell wakes the fetcher, which ends instead of taking it...
    await async_wait_for(dispatch.done, 10, "the fetcher to end")
    assert (await engine.api.job(later.job_id)).status == "new"
    # ...and puts the wake-up back, for a worker that still takes jobs.
    redis = engine.redis.loop_client()
    try:
        assert await redis.llen(keys.DOORBELL) == 1
    finally:
        await redis.aclose()


async def test_drain_seconds_zero_hands_back_at_once(engine_config: Config) -> None:
    jobs = replace(engine_config.jobs, drain_seconds=0)
    config = replace(engine_config, enable_ui=False, enable_webdav=False, jobs=jobs)
    async with Engine(config) as engine:
        view = await engine.api.submit("!!fake.sleep seconds:60\n", topic="d", timeout=120)
        await async_poll(lambda: _all_active(engine, [view.job_id]), 10, "the job to run")
        said: list[str] = []
        assert await engine.drain(say=said.append) == 1
        assert said == ["1 running jobs go back to their queues"]


def test_quitting_the_terminal_app_lets_running_jobs_finish(short_tmp: Path) -> None:
    data = short_tmp / "data"
    port = free_port()
    # The app wants a terminal; it draws on stderr, kept in a file for the asserts.
    terminal, app_side = pty.openpty()
    fcntl.ioctl(app_side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    screen = short_tmp / "screen.txt"
    with screen.open("wb") as drawn:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "heroagent_tui", "--config", os.devnull),
                *("--data-dir", str(data), "--redis-port", str(port)),
                *("--webdav-port", str(free_port()), "--ui-port", str(free_port())),
            ],
            stdin=app_side,
            stdout=app_side,
            stderr=drawn,
            env={**os.environ, "TERM": "xterm-256color"},
        )
    os.close(app_side)
    try:
        password = data / "redis" / "password"
        wait_for(
            lambda: password.exists() and ping(("127.0.0.1", port), password.read_text().strip()),
            30,
            "the engine's Redis server",
        )
        with Client(f"redis://127.0.0.1:{port}", password.read_text().strip()) as client:
            ids = [client.submit("!!fake.sleep seconds:2\n", topic="tui").job_id for _ in range(2)]
            wait_for(
                lambda: all(job.status == "active" for job in client.get_many(ids)),
                30,
                "the jobs to run",
            )
        os.write(terminal, b"q")
        assert proc.wait(30) == 0, screen.read_text(errors="replace")[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(terminal)
    said = screen.read_text(errors="replace")
    assert "heroagent: draining 2 running jobs for up to 10s; Ctrl-C to stop now" in said
    assert "heroagent: drained: all 2 running jobs finished" in said
    for versions in histories(data, ids):
        assert versions[-1].status == "done"
