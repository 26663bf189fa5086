"""HeroAgent's side of the job benchmark: drain, idle latency and RSS with a big history.

The engine runs in this process with `jobs.worker_count=0` against the shared server;
jobs are run by `heroagent worker` subprocesses (or, for one line, by a WatchDog in
this process, as an engine with workers of its own does). A job counts as done when
the engine's persister has written its end to OurDB: the persister publishes
JobStateChanged on the bus after the write, and this module counts those events. After
each drain, outside the timed window, it reads every job's history back and raises
unless it is new, active, done. The idle latency is the submitter's own view:
`EngineAPI.submit`, then `EngineAPI.wait` until the result is in hand, the end durable
in OurDB.
Run as `python -m bench.jobs_hero rss DATA_DIR URL` it is the fresh engine process
whose RSS the benchmark reports.

CPU per process: the engine is this (the bench's) process, so its figure includes the
bench counting the bus events (a set insert per job); each worker is a child started
here, and valkey-server's pid comes from the caller. All are read from /proc at the
first and at the last job done.
"""

from __future__ import annotations

import asyncio
import compileall
import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.peers.common import CpuMeter
from core.api import JobFilter, JobSpec
from core.config import Config, JobsConfig, RedisConfig
from core.engine import Engine
from core.events import JobStateChanged
from core.events.bus import Subscription
from core.jobs import JobStatus
from core.jobs import keys as job_keys
from core.watchdog import WatchDog
from core.watchdog.service import build_processors, build_registry, watchdog_settings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "!!fake.return_success message:ok\n"
TOPIC = "bench"
CREATE_BATCH = 1_000
DRAIN_TIMEOUT = 600.0


@dataclass(frozen=True)
class Drain:
    """One drain run: N queued first, then timed from starting the workers."""

    n: int
    enqueue_s: float
    startup_s: float
    total_s: float
    # CPU seconds between the first and the last job done: engine, each worker, server.
    cpu: dict[str, Any] = field(default_factory=dict)
    cpu_startup: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Jobs per second from starting the workers to the last job done."""
        return self.n / self.total_s

    @property
    def steady(self) -> float:
        """Jobs per second from the first job done to the last."""
        span = self.total_s - self.startup_s
        return (self.n - 1) / span if span > 0 else float("inf")


def engine_config(data_dir: Path, url: str, worker_count: int = 0) -> Config:
    """An engine on the shared server with only the job system running."""
    return Config(
        data_dir=str(data_dir),
        log_level="warning",
        enable_webdav=False,
        enable_ui=False,
        redis=RedisConfig(url=url),
        jobs=JobsConfig(worker_count=worker_count),
    )


@functools.cache
def compile_sources() -> None:
    """Write the bytecode of HeroAgent's packages, once, before any worker is timed.

    An installed HeroAgent starts from the bytecode pip wrote; a checkout run with
    PYTHONDONTWRITEBYTECODE (as this machine kind sets) has none, and each worker then
    compiled every module it imports: 0.5 s of CPU per start instead of 0.3 s, inside
    the drain, twice over with two workers. The peers' packages are installed.
    """
    for package in ("core", "heroagent", "heroagent_tui"):
        compileall.compile_dir(ROOT / package, quiet=1)


def start_workers(
    count: int, url: str, work: Path, slots: int, launcher: list[str] | None = None
) -> list[subprocess.Popen[bytes]]:
    """Start `count` `heroagent worker` processes with `slots` job slots each.

    `launcher` replaces `python -m heroagent_tui` (the profiler's shim runs it so).
    """
    compile_sources()
    env = os.environ | {"HEROAGENT_JOBS_WORKER_COUNT": str(slots), "HEROAGENT_LOG_LEVEL": "warning"}
    procs = []
    for i in range(count):
        data = work / f"worker{i}"
        data.mkdir(parents=True, exist_ok=True)
        argv = list(launcher or [sys.executable, "-m", "heroagent_tui"])
        argv += ["--config", "/dev/null"]
        argv += ["--data-dir", str(data), "--redis-url", url, "worker"]
        with (data / "worker.log").open("ab") as log:
            procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker by pid, then SIGKILL what is left after 10 s."""
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def count_ended(
    sub: Subscription, n: int, seconds: float, on_first: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Wait for `n` jobs to end in OurDB; perf_counter times of the first and the last."""
    ended: set[int] = set()
    errors = 0
    first = 0.0
    async with asyncio.timeout(seconds):
        while len(ended) < n:
            for event in await sub.get_batch():
                if isinstance(event, JobStateChanged) and event.status in ("done", "error"):
                    if not ended:
                        first = time.perf_counter()
                        if on_first is not None:
                            on_first()
                    ended.add(event.job_id)
                    errors += event.status == "error"
    if errors:
        raise RuntimeError(f"{errors} of {n} benchmark jobs ended in error")
    return first, time.perf_counter()


async def queue_jobs(engine: Engine, n: int) -> list[int]:
    """Create `n` no-op jobs in batches of CREATE_BATCH; their ids."""
    ids: list[int] = []
    spec = JobSpec(SCRIPT, topic=TOPIC)
    for start in range(0, n, CREATE_BATCH):
        jobs = await engine.jobs.create_jobs([spec] * min(CREATE_BATCH, n - start))
        ids += [job.job_id for job in jobs]
    return ids


async def drain(
    url: str, work: Path, n: int, workers: int, slots: int, server_pid: int | None = None
) -> Drain:
    """Queue `n` jobs, then time `workers` worker processes (0: in-process) to drain them."""
    async with Engine(engine_config(work / "engine", url)) as engine:
        with engine.bus.subscribe(maxsize=4 * n + 1_000) as sub:
            start = time.perf_counter()
            ids = await queue_jobs(engine, n)
            enqueue_s = time.perf_counter() - start
            sub.drain()
            compile_sources()
            dog: WatchDog | None = None
            procs: list[subprocess.Popen[bytes]] = []
            start = time.perf_counter()
            if workers:
                procs = start_workers(workers, url, work, slots)
            else:
                dog = local_watchdog(engine, slots)
                await dog.start()
            meter = CpuMeter([p.pid for p in procs], server_pid, alone=(os.getpid(),))
            meter.mark()
            try:
                first, last = await count_ended(sub, n, DRAIN_TIMEOUT, meter.mark)
                meter.mark()
            finally:
                if dog is not None:
                    await dog.stop()
                stop_workers(procs)
        await verify_history(engine, ids)
    return Drain(
        n,
        enqueue_s,
        first - start,
        last - start,
        split(meter.between(1, 2)),
        split(meter.between(0, 1)),
    )


LIFECYCLE = ["new", "active", "done"]


async def verify_history(engine: Engine, ids: list[int]) -> None:
    """Raise unless every job's OurDB history is exactly new, active, done (untimed)."""
    wrong: dict[int, list[str]] = {}
    for start in range(0, len(ids), CREATE_BATCH):
        chunk = ids[start : start + CREATE_BATCH]
        histories = await asyncio.gather(*(engine.api.history(i) for i in chunk))
        for job_id, versions in zip(chunk, histories, strict=True):
            statuses = [v.status for v in versions]
            if statuses != LIFECYCLE:
                wrong[job_id] = statuses
    if wrong:
        sample = dict(list(wrong.items())[:5])
        raise RuntimeError(
            f"{len(wrong)} of {len(ids)} jobs lack the history {LIFECYCLE} in OurDB: {sample}"
        )


def split(cpu: dict[str, Any]) -> dict[str, Any]:
    """CpuMeter's figures named: the engine first, then the workers, then the server."""
    engine, *workers = cpu["workers"]
    return {"engine": engine, "workers": workers, "server": cpu["server"]}


# Run by `enqueue` in a process of its own, as an application would: jobs/s of
# heroagent.Client.submit_many in batches of 1,000, over the engine's request channel.
CLIENT_BULK = """
import sys, time
from heroagent import Client
n, url, script, topic = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with Client(url) as client:
    client.submit_many([script] * 100, topic=topic)
    start = time.perf_counter()
    for first in range(0, n, 1000):
        client.submit_many([script] * min(1000, n - first), topic=topic)
    print(n / (time.perf_counter() - start))
"""


# Run by `enqueue` in a process of its own: jobs/s of CALLERS coroutines each calling
# heroagent.AsyncClient.submit one job at a time, over the request channel.
CLIENT_CONCURRENT = """
import asyncio, sys, time
from heroagent import AsyncClient
n, url, script, topic = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
callers = int(sys.argv[5])
async def main():
    async with AsyncClient(url) as client:
        await asyncio.gather(*(client.submit(script, topic=topic) for _ in range(callers)))
        left = n
        async def caller():
            nonlocal left
            while left > 0:
                left -= 1
                await client.submit(script, topic=topic)
        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        print(n / (time.perf_counter() - start))
asyncio.run(main())
"""
CALLERS = 32


async def enqueue(url: str, work: Path, n: int) -> dict[str, float]:
    """Jobs/s queued one call at a time (EngineAPI.submit; HTTP POST) and in batches of 1,000.

    The batches go through `heroagent.Client.submit_many` in a separate process, the
    way an application queues them; `api_bulk_per_s` is `create_jobs` called in this
    process, the engine's own ceiling, and `http_bulk_per_s` is POST /api/jobs/batch.
    `submit_per_s` is CALLERS concurrent `AsyncClient.submit` calls (one job each) from
    a separate process, which share the engine's durable writes. No worker runs: the
    jobs stay queued, and the caller flushes the server after. The HTTP client is a
    separate process (bench.http's), one keep-alive connection.
    """
    from bench.http import BATCH, over_http
    from bench.launch import free_port

    base = engine_config(work / "engine", url)
    config = replace(base, enable_ui=True, ui=replace(base.ui, host="127.0.0.1", port=free_port()))
    async with Engine(config) as engine:
        await queue_jobs(engine, min(n, 100))  # warm the path up
        start = time.perf_counter()
        for _ in range(n):
            await engine.api.submit(SCRIPT, topic=TOPIC)
        api_one = n / (time.perf_counter() - start)
        http_one = (await over_http(config.ui.port, "submit", n)).per_second
        start = time.perf_counter()
        await queue_jobs(engine, n)
        api_bulk = n / (time.perf_counter() - start)
        bulk = await client_rate(CLIENT_BULK, n, url)
        concurrent = await client_rate(CLIENT_CONCURRENT, n, url, CALLERS)
        batches = max(1, n // BATCH)
        http_bulk = (await over_http(config.ui.port, "batch", batches)).per_second
    return {
        "n": n,
        "one_per_s": api_one,
        "http_one_per_s": http_one,
        "bulk_per_s": bulk,
        "api_bulk_per_s": api_bulk,
        "submit_per_s": concurrent,
        "http_bulk_per_s": http_bulk * BATCH,
    }


async def client_rate(script: str, n: int, url: str, *extra: object) -> float:
    """The jobs/s a client script run in a process of its own prints on its last line."""
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(n), url, SCRIPT, TOPIC, *map(str, extra),
        stdout=subprocess.PIPE,
        env={**os.environ, "HEROAGENT_CONFIG": os.devnull},
    )  # fmt: skip
    out, _ = await client.communicate()
    if client.returncode != 0:
        raise RuntimeError(f"a client enqueue run failed (exit {client.returncode})")
    return float(out.decode().strip().splitlines()[-1])


def local_watchdog(engine: Engine, slots: int) -> WatchDog:
    """The watchdog an engine with `jobs.worker_count=slots` runs in its own process."""
    config = replace(engine.config, jobs=replace(engine.config.jobs, worker_count=slots))
    return WatchDog(
        engine.redis.loop_client(),
        build_processors(config, build_registry(config)),
        watchdog_settings(config),
        bus=engine.bus,
    )


async def latency(
    url: str,
    work: Path,
    samples: int,
    slots: int,
    seed: int = 7,
    *,
    launcher: list[str] | None = None,
    stamp: Callable[[str], None] = lambda _: None,
) -> list[float]:
    """Seconds from submit to result in hand, one job at a time, one idle worker process.

    The submitter is this process's `EngineAPI`: `submit`, then `wait`, which answers
    with the job's final state (its result) once its end is durable in OurDB. `stamp`
    hears "warm-up" or "round" as each round begins, then "submitted" and "waited"
    (bench.trace_round's timeline); `launcher` is `start_workers`'s.
    """
    rng = random.Random(seed)
    async with Engine(engine_config(work / "engine", url)) as engine:
        procs = start_workers(1, url, work, slots, launcher)
        try:
            redis = engine.jobs.queue.redis
            async with asyncio.timeout(60):
                # Another process registers: nothing here to wait on but the server.
                while not await redis.scard(job_keys.WORKERS):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            times = []
            for i in range(samples + 3):  # the first three warm the worker up
                await asyncio.sleep(rng.uniform(0.05, 0.55))
                stamp("round" if i >= 3 else "warm-up")
                start = time.perf_counter()
                job = await engine.api.submit(SCRIPT, topic=TOPIC)
                stamp("submitted")
                async with asyncio.timeout(30):
                    done = await engine.api.wait(job.job_id)
                stamp("waited")
                if i >= 3:
                    times.append(time.perf_counter() - start)
                if done.status != "done" or '"ok"' not in done.result:
                    raise RuntimeError(f"latency job {job.job_id}: {done.status} {done.error}")
            return times
        finally:
            stop_workers(procs)


async def fill_history(url: str, data_dir: Path, total: int, batch: int = 10_000) -> float:
    """Put `total` ended jobs (new + done versions) into a history; seconds it took."""
    start = time.perf_counter()
    async with Engine(engine_config(data_dir, url)) as engine:
        manager = engine.jobs
        redis = manager.queue.redis
        spec = JobSpec(SCRIPT, topic=TOPIC)
        for first in range(0, total, batch):
            jobs = await manager.create_jobs([spec] * min(batch, total - first))
            now = time.time()
            ended = [
                replace(
                    job,
                    status=JobStatus.DONE,
                    result='[{"action":"fake.return_success","result":"ok"}]',
                    worker="bench",
                    attempts=1,
                    time_start=now,
                    time_end=now,
                )
                for job in jobs
            ]
            await manager.persist(ended)
            # No worker runs them: drop the queued ids the done versions left behind.
            await redis.delete(job_keys.queue_key("default", TOPIC), job_keys.DOORBELL)
    return time.perf_counter() - start


def measure_rss(url: str, data_dir: Path) -> dict[str, float]:
    """RSS of a fresh engine process opening `data_dir` (MB), and its start-up time (s)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.jobs_hero", "rss", str(data_dir), url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"RSS probe failed: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _rss_probe(data_dir: Path, url: str) -> dict[str, float]:
    start = time.perf_counter()
    async with Engine(engine_config(data_dir, url)) as engine:
        started = time.perf_counter() - start
        # Touch the history as a front end would: the newest page and the oldest job.
        newest = await engine.jobs.list_jobs(JobFilter(), limit=50)
        await engine.jobs.stored_job(1)
        await asyncio.sleep(1.0)
        status = await asyncio.to_thread(Path("/proc/self/status").read_text)
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        kb = {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}
        return {
            "rss_mb": kb["VmRSS"] / 1024,
            "hwm_mb": kb["VmHWM"] / 1024,
            "start_s": started,
            "newest": float(newest[0].job_id if newest else 0),
        }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "rss":
        print(json.dumps(asyncio.run(_rss_probe(Path(sys.argv[2]), sys.argv[3]))))
    else:
        sys.exit("usage: python -m bench.jobs_hero rss DATA_DIR REDIS_URL")
