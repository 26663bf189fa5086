"""The terminal app: time to first screen, key-to-frame latency under load, memory under flow.

Run ``python -m bench.tui`` (``--quick`` for a smoke run, ``--readme`` to write the
figures into the README's tui block). Targets (issue 16): first
screen in under 1.5 s; key-to-frame p99 under 100 ms with 1M jobs in history and the
engine draining at its full rate (the queue kept fed faster than it drains); the app's
RSS under 300 MB, flat over 10 minutes of flow.

The history is written straight to OurDB and the index in large batches, once per
version and size, under ``bench/.cache/``; later runs copy it. The app's engine runs its
job slots in a child process, as the app does (``--in-process``: on the engine's loop, as
``jobs.worker_process = false``); ``--rate N`` offers N jobs/s instead of the full rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import importlib.metadata
import os
import pty
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import redis.exceptions
from textual import events

from bench.launch import free_port
from bench.loop_holds import LoopHolds
from bench.readme import load_average, machine, rewrite_block
from core.api import JobSpec
from core.config import Config, load_config
from core.engine import Engine
from core.engine_thread import EngineThread
from core.jobs import keys
from core.jobs.index import SCHEMA_VERSION, JobIndex
from core.jobs.model import Job, JobStatus
from core.ourdb import AsyncOurDB

FIRST_SCREEN_TARGET = 1.5
KEY_TIMEOUT = 10.0
P99_TARGET_MS = 100.0
RSS_TARGET_MIB = 300.0
# How often the app's heap is read through the soak.
SOAK_SAMPLES = 10
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
# Bump when the built history's shape changes, so an old cache is not reused.
HISTORY_FORMAT = 1
HISTORY_BATCH = 20_000
# At full rate the queue is kept this deep, topped up this many jobs at a time.
FULL_BACKLOG = 5_000
FEED_BATCH = 1_000


def _config(directory: Path) -> Config:
    return load_config(
        directory / "no-config.toml",
        env={},
        flags={
            "data_dir": str(directory / "data"),
            "redis.tcp_port": free_port(),
            "webdav.port": free_port(),
        },
    ).config


def _pids_with(text: str) -> set[int]:
    """Processes whose command line holds `text` (our temp dir: ours alone)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def first_screen(settle: float = 3.0) -> tuple[float, float, bool]:
    """Start `heroagent` in a pseudo-terminal; seconds to the first full screen, to quit.

    It quits `settle` seconds after its start (the services coming up meanwhile), or at
    once when the first screen took longer.
    """
    with tempfile.TemporaryDirectory(prefix="ha-bench-") as directory:
        config = _config(Path(directory))
        argv = [sys.executable, "-m", "heroagent_tui", "--data-dir", config.data_dir]
        argv += ["--redis-port", str(config.redis.tcp_port)]
        argv += ["--webdav-port", str(config.webdav.port)]
        main, child = pty.openpty()
        os.set_blocking(main, False)
        env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="36")
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env)
        os.close(child)
        seen = b""
        shown = quit_seconds = float("nan")
        try:
            deadline = started + 20
            while time.perf_counter() < deadline and b"Queue depths" not in seen:
                if select.select([main], [], [], 0.05)[0]:
                    seen += os.read(main, 65536)
            shown = time.perf_counter() - started
            # Let it come up fully, then quit like a user and time the clean stop.
            while time.perf_counter() < started + max(settle, shown):
                if select.select([main], [], [], 0.05)[0]:
                    os.read(main, 65536)
            quitting = time.perf_counter()
            os.write(main, b"q")
            while proc.poll() is None and time.perf_counter() < quitting + 20:
                if select.select([main], [], [], 0.05)[0]:
                    try:
                        os.read(main, 65536)
                    except OSError:
                        break
            proc.wait(20)
            quit_seconds = time.perf_counter() - quitting
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            os.close(main)
        leftovers = _pids_with(directory)
    return shown, quit_seconds, not leftovers


async def _history_source(jobs: int) -> tuple[Path, float, bool]:
    """A data dir holding `jobs` ended jobs, built once per version and size, then reused.

    Returns it, the seconds its build took (when it was built, now or before), and
    whether it was built now.
    """
    version = importlib.metadata.version("heroagent")
    source = CACHE / f"history-{version}-i{SCHEMA_VERSION}-f{HISTORY_FORMAT}-{jobs}"
    built = source / "built"
    fresh = not built.exists()
    if fresh:
        started = time.perf_counter()
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        # In a process of its own: the build's memory would count in the app's RSS,
        # which this process is about to measure (its first run read 300 MiB, not 120).
        code = "import asyncio, sys; from pathlib import Path; from bench import tui; "
        code += "asyncio.run(tui.build_history(Path(sys.argv[1]), int(sys.argv[2])))"
        argv = [sys.executable, "-c", code, str(source), str(jobs)]
        # A 1M-job build takes about half a minute to two; an hour is a hang.
        await asyncio.to_thread(subprocess.run, argv, check=True, cwd=ROOT, timeout=3600)
        built.write_text(f"{time.perf_counter() - started:.1f}\n")
    return source, float(built.read_text()), fresh


async def build_history(directory: Path, jobs: int) -> None:
    """Write `jobs` done jobs to OurDB and the index directly, in large batches.

    Each job is one version (what the list shows of it); an engine started on the dir
    finds a clean index that agrees with OurDB, so it reconciles nothing.
    """
    index = JobIndex(directory / "jobs-index.sqlite")
    db = await AsyncOurDB(directory / "jobsdb").open()
    now = time.time()
    try:
        for first in range(0, jobs, HISTORY_BATCH):
            done = [
                Job(
                    job_id=0,
                    topic="seed",
                    params="!!fake.return_success\n",
                    status=JobStatus.DONE,
                    time_scheduled=now - jobs + n,
                    time_start=now - jobs + n,
                    time_end=now - jobs + n,
                    attempts=1,
                    worker="bench",
                    revision=3,
                )
                for n in range(first, min(jobs, first + HISTORY_BATCH))
            ]
            records = [job.to_json() for job in done]
            ids = await db.set_many(records)
            for job, job_id in zip(done, ids, strict=True):
                job.job_id = job_id
            crcs = {job_id: zlib.crc32(rec) for job_id, rec in zip(ids, records, strict=True)}
            await asyncio.to_thread(index.upsert, done, crcs)
    finally:
        await db.close()
        index.mark_clean(True)
        index.close()


async def with_history(config: Config, jobs: int) -> tuple[float, float, bool]:
    """Put `jobs` ended jobs in the config's data dir.

    Returns the seconds to build them and to copy them, and whether they were built now.
    """
    source, build, fresh = await _history_source(jobs)
    started = time.perf_counter()
    config.data_path.mkdir(parents=True, exist_ok=True)
    # cp keeps OurDB's lookup table sparse, as the engine writes it; shutil fills its
    # holes, and the open's scan for the highest id then reads (and maps) all of it.
    for name, into in (("jobsdb", config.ourdb_dir), ("jobs-index.sqlite", config.data_path)):
        argv = ["cp", "-R", "--sparse=always", str(source / name), str(into)]
        await asyncio.to_thread(subprocess.run, argv, check=True)
    return build, time.perf_counter() - started, fresh


async def _create(engine: Engine, batch: list[JobSpec]) -> None:
    # A burst can run redis-py's pool (100 connections) dry: the batch waits and retries.
    for _ in range(50):
        try:
            await engine.jobs.create_jobs(batch)
            return
        except redis.exceptions.MaxConnectionsError:
            await asyncio.sleep(0.01)
    raise RuntimeError("the engine's Redis pool stayed exhausted")


async def _flow(engine: Engine, per_second: int, stop: asyncio.Event, sent: list[int]) -> None:
    """Submit `per_second` jobs a second in fifty batches, until `stop`; 0: at full rate.

    At full rate the queue is kept above `FULL_BACKLOG` jobs, so the slots never wait
    for work: the engine drains as fast as it can. `sent[0]` counts the jobs submitted.
    """
    spec = JobSpec("!!fake.return_success", topic="flow")
    if per_second <= 0:
        while not stop.is_set():
            if await _backlog(engine) < FULL_BACKLOG:
                await _create(engine, [spec] * FEED_BATCH)
                sent[0] += FEED_BATCH
            else:
                await asyncio.sleep(0.02)
        return
    tick = 0.02
    per_tick = max(1, per_second // 50)
    next_at = time.perf_counter()
    while not stop.is_set():
        await _create(engine, [spec] * per_tick)
        sent[0] += per_tick
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def _backlog(engine: Engine) -> int:
    """Jobs waiting in the flow's queue."""
    return int(await engine.jobs.queue.redis.llen(keys.queue_key("default", "flow")))


async def _key_to_frame(app: Any, table: Any, key: str) -> tuple[float, float]:
    """Milliseconds from a key event entering the app to the frame that shows its effect.

    The key goes in as the terminal driver would send it (Pilot's own waits for an idle
    loop would measure the load, not the app), then one refresh after the cursor moved.
    Also the CPU milliseconds the loop's thread spent meanwhile: what the wait would be
    with a core to itself (a loaded machine stretches the first, not the second).
    """
    before = table.cursor_row
    started, cpu = time.perf_counter(), time.thread_time()
    app.post_message(events.Key(key, key))
    async with asyncio.timeout(KEY_TIMEOUT):
        # A 0.5 ms poll is the measurement's resolution, not a wait for work to finish.
        while table.cursor_row == before:  # noqa: ASYNC110
            await asyncio.sleep(0.0005)
        drawn = asyncio.get_running_loop().create_future()
        app.call_after_refresh(lambda: drawn.done() or drawn.set_result(None))
        await drawn
    return (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000


async def _sample_keys(
    app: Any, table: Any, samples: int, times: list[float], cpus: list[float], verbose: bool
) -> None:
    """Press `j` and `k` in turn `samples` times; each one's wall and loop CPU milliseconds."""
    for n in range(samples):
        wall, cpu = await _key_to_frame(app, table, "j" if n % 2 == 0 else "k")
        times.append(wall)
        cpus.append(cpu)
        if verbose:
            print(f"  sample {n}: {wall:.1f} ms ({cpu:.1f} ms CPU)", file=sys.stderr, flush=True)
        await asyncio.sleep(0.05)


def _rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process, MiB (0 when it is gone)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _anon_mib() -> float:
    """This process's anonymous resident memory, MiB: its heap, without mapped files.

    The rest of RSS is file pages mapped in (the OurDB lookup table, libraries), which
    grow with the ids the history has used and which the kernel can drop at any time.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def latency(
    history: int,
    per_second: int,
    samples: int,
    soak: float,
    *,
    child: bool = True,
    verbose: bool = False,
    holds: bool = False,
    profile: Path | None = None,
) -> dict[str, float]:
    """Key-to-frame latency in Jobs while jobs flow; RSS before and after the soak.

    With `holds`, the loop's long callbacks while the keys are measured go to stderr
    (bench.loop_holds); with `profile`, a cProfile of the loop's thread meanwhile.
    """
    from heroagent_tui.app import create_app
    from heroagent_tui.screens.jobs import JobsScreen
    from heroagent_tui.widgets.job_table import JobTable

    # A jobs service past its stop deadline (a persister far behind) may still write.
    with tempfile.TemporaryDirectory(prefix="ha-bench-", ignore_cleanup_errors=True) as directory:
        config = _config(Path(directory))
        config.enable_webdav = False
        config.jobs = dataclasses.replace(config.jobs, worker_process=child)
        built, copied, fresh = await with_history(config, history)
        # As `heroagent` runs it: the engine on its own thread and loop, the app on this.
        host = EngineThread()
        engine, api = await host.build(lambda: Engine(config, fail_fast=False, child_slots=True))
        started = time.perf_counter()
        try:
            await host.call(engine.start())
            up = time.perf_counter() - started
            slots = engine.watchdog.pid() if engine.watchdog is not None else None
            if verbose:
                print(f"  engine up in {up:.1f} s", file=sys.stderr, flush=True)
            app = create_app(engine, api=api)
            app.state_path = None
            stop = asyncio.Event()
            async with app.run_test(size=(120, 36)) as pilot:
                await pilot.press("3")
                while not isinstance(app.screen, JobsScreen):
                    await pilot.pause()
                table = app.screen.query_one(JobTable)
                sent = [0]
                # On the engine's loop, as submits from other processes would be handled.
                flow = asyncio.ensure_future(host.call(_flow(engine, per_second, stop, sent)))
                await pilot.pause(1.0)
                rss_start = _rss_mib()
                backlog_start, sent_start = await host.call(_backlog(engine)), sent[0]
                flowing_from = time.perf_counter()
                times, cpus = [], []
                watch = LoopHolds() if holds else contextlib.nullcontext()
                profiler = cProfile.Profile() if profile is not None else None
                with watch:
                    if profiler is not None:
                        profiler.enable()
                    try:
                        await _sample_keys(app, table, samples, times, cpus, verbose)
                    finally:
                        if profiler is not None:
                            profiler.disable()
                if isinstance(watch, LoopHolds):
                    print(watch.report(), file=sys.stderr, flush=True)
                if profiler is not None and profile is not None:
                    profiler.dump_stats(profile)
                # Sampled through the soak: a heap that grows to its end is a leak, one
                # that levels off is caches filling.
                anon = [_anon_mib()]
                for _ in range(SOAK_SAMPLES):
                    await asyncio.sleep(soak / SOAK_SAMPLES)
                    anon.append(_anon_mib())
                rss_end = _rss_mib()
                rss_slots = _rss_mib(slots) if slots is not None else 0.0
                flowed = time.perf_counter() - flowing_from
                backlog_end, sent_end = await host.call(_backlog(engine)), sent[0]
                host.loop.call_soon_threadsafe(stop.set)
                await flow
                await pilot.press("q")
        finally:
            try:
                await host.call(engine.stop())
            finally:
                await host.close()
    times.sort()
    cpus.sort()
    return {
        "cpu_p50_ms": statistics.median(cpus),
        "cpu_p99_ms": cpus[min(len(cpus) - 1, int(len(cpus) * 0.99))],
        "build_s": built,
        "built_now": fresh,
        "copy_s": copied,
        "up_s": up,
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "max_ms": times[-1],
        "rss_start_mib": rss_start,
        "rss_end_mib": rss_end,
        "rss_slots_mib": rss_slots,
        "anon_start_mib": anon[0],
        "anon_mid_mib": anon[len(anon) // 2],
        "anon_end_mib": anon[-1],
        "flowed": float(sent[0]),
        # Jobs the engine took from the queue per second while the keys were measured.
        "drained_per_s": (sent_end - sent_start + backlog_start - backlog_end) / flowed,
    }


@dataclasses.dataclass(frozen=True)
class Run:
    """What a run of this bench was asked to do, for its README block."""

    history: int
    offered: str
    slots: str
    soak: float
    load_before: str
    quick: bool
    skip_start: bool


def readme_lines(
    run: Run, result: dict[str, float], shown: float, quit_s: float, clean: bool
) -> list[str]:
    """The README's tui block: the run, then each figure beside its target."""
    smoke = (
        "**Smoke run (`--quick`): a small history and a short flow; `make bench-tui-readme` "
        "on a quiet machine replaces it.** "
        if run.quick
        else ""
    )
    rows = [
        "| measure | figure | target |",
        "| --- | --- | --- |",
    ]
    if not run.skip_start:
        rows += [
            f"| first screen | {shown:.2f} s | under {FIRST_SCREEN_TARGET} s |",
            f"| quit (the engine stops) | {quit_s:.2f} s, "
            f"{'no child process left' if clean else 'CHILD PROCESSES LEFT'} | |",
        ]
    rows += [
        f"| key to frame in Jobs, p50 / p99 / max | {result['p50_ms']:.1f} / "
        f"{result['p99_ms']:.1f} / {result['max_ms']:.1f} ms | p99 under "
        f"{P99_TARGET_MS:.0f} ms |",
        f"| the app loop's CPU between key and frame, p50 / p99 | {result['cpu_p50_ms']:.1f} / "
        f"{result['cpu_p99_ms']:.1f} ms | |",
        f"| drained meanwhile | {result['drained_per_s']:,.0f} jobs/s | |",
        f"| the app's RSS | {result['rss_start_mib']:.0f} MiB, {result['rss_end_mib']:.0f} MiB "
        f"after {run.soak:.0f} s of flow | under {RSS_TARGET_MIB:.0f} MiB |",
        f"| the app's heap (anonymous RSS): start, half-way, end of the soak | "
        f"{result['anon_start_mib']:.0f}, {result['anon_mid_mib']:.0f}, "
        f"{result['anon_end_mib']:.0f} MiB | flat |",
        f"| the job slots' process RSS | {result['rss_slots_mib']:.0f} MiB | |",
    ]
    return [
        f"{smoke}`python -m bench.tui{' --quick' if run.quick else ''}` on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}: {run.history:,} jobs in the history, "
        f"jobs flowing at {run.offered}, job slots {run.slots}. Machine: {machine()}; load "
        f"average {run.load_before} at the start, {load_average()} at the end.",
        "",
        *rows,
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print them against their targets."""
    parser = argparse.ArgumentParser(prog="python -m bench.tui", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small history, short flow")
    parser.add_argument("--soak", type=float, help="seconds of flow after sampling")
    parser.add_argument("--history", type=int, help="jobs in the history first")
    parser.add_argument("--rate", type=int, help="jobs per second offered (0: full rate)")
    parser.add_argument("--samples", type=int, help="key presses measured")
    parser.add_argument("--in-process", action="store_true", help="job slots on the engine's loop")
    parser.add_argument("--verbose", action="store_true", help="print each sample")
    parser.add_argument("--skip-start", action="store_true", help="no first-screen run")
    parser.add_argument("--holds", action="store_true", help="print what held the loop")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the loop's thread")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's tui block")
    args = parser.parse_args(argv)
    # The smoke run checks that every part runs, not the figures: short in each.
    history, samples, soak = (2_000, 16, 0.5) if args.quick else (1_000_000, 400, 600.0)
    history = args.history if args.history is not None else history
    rate = args.rate if args.rate is not None else 0
    samples = args.samples if args.samples is not None else samples
    soak = args.soak if args.soak is not None else soak
    shown, quit_s, clean = 0.0, 0.0, True
    load_before = load_average()
    if not args.skip_start:
        shown, quit_s, clean = first_screen(settle=1.5 if args.quick else 3.0)
        print(f"first screen      {shown:6.2f} s   (target < {FIRST_SCREEN_TARGET} s)")
        print(f"quit (engine stop){quit_s:6.2f} s   children left: {'none' if clean else 'SOME'}")
    result = asyncio.run(
        latency(
            history,
            rate,
            samples,
            soak,
            child=not args.in_process,
            verbose=args.verbose,
            holds=args.holds,
            profile=args.profile,
        )
    )
    offered = "full rate" if rate <= 0 else f"{rate:,} jobs/s offered"
    where = "on the app's loop" if args.in_process else "in a child process"
    print(
        f"history           {history:,} jobs: built in {result['build_s']:.1f} s "
        f"({'now, in a process of its own' if result['built_now'] else 'cached'}), "
        f"copied in {result['copy_s']:.1f} s, engine up in {result['up_s']:.1f} s"
    )
    print(
        f"key-to-frame      p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
        f"max {result['max_ms']:.1f} ms   (target p99 < {P99_TARGET_MS:.0f} ms; {offered}, "
        f"{result['drained_per_s']:,.0f} jobs/s drained, job slots {where})"
    )
    print(
        f"  loop CPU meanwhile p50 {result['cpu_p50_ms']:.1f} ms  p99 "
        f"{result['cpu_p99_ms']:.1f} ms   (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores)"
    )
    print(
        f"memory (RSS)      app {result['rss_start_mib']:.0f} MiB -> "
        f"{result['rss_end_mib']:.0f} MiB after {soak:.0f} s of flow "
        f"(target < {RSS_TARGET_MIB:.0f} MiB); job slots' process "
        f"{result['rss_slots_mib']:.0f} MiB"
    )
    print(
        f"  its heap (anonymous) {result['anon_start_mib']:.0f} -> "
        f"{result['anon_mid_mib']:.0f} -> {result['anon_end_mib']:.0f} MiB "
        "(start, half-way, end of the soak; the rest of RSS is mapped files)"
    )
    if args.readme:
        run = Run(history, offered, where, soak, load_before, args.quick, args.skip_start)
        rewrite_block("tui", readme_lines(run, result, shown, quit_s, clean))
    ok = (
        clean
        and result["p99_ms"] < P99_TARGET_MS
        and shown < FIRST_SCREEN_TARGET
        and result["rss_end_mib"] < RSS_TARGET_MIB
    )
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
