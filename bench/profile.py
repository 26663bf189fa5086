"""Where HeroAgent's CPU goes while draining no-op jobs: cProfile time per job, in buckets.

Run `python -m bench.profile --jobs 5000` (`--workers 0` for the engine's own watchdog,
which puts fetch, run and report in the engine's process too). One drain like
bench.jobs's, with cProfile on in the engine (this process) and in the one
`heroagent worker` (started through this module's `--shim`), in every thread of each:
the actors and the index run in `asyncio.to_thread` workers, which a plain cProfile of
the main thread would miss. The profilers read each thread's CPU clock, so a thread
blocked in epoll or on a lock is not counted as busy. The window is the one of the CPU
figures in bench.jobs: from the first job done to the last. Threads already running
when it opens (OurDB's writer) cannot be profiled on Python 3.11: their CPU clocks are
read, and OurDB's writer counts as persist.

Each function's own time (not its callees') goes to a bucket by module and function;
time in a C builtin (a list append, a dict lookup) or a stdlib helper (dataclasses,
enum, functools...) goes to the bucket of the function that called it, except the
builtins that are a bucket's own work (sqlite3, _json, hiredis, epoll, socket and
file calls). cProfile's own overhead inflates functions
called very often, so the shares matter more than the absolute µs; bench.jobs also
prints them scaled to the CPU the same process used per job without the profiler.
"""

from __future__ import annotations

import ast
import asyncio
import cProfile
import json
import os
import pstats
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import script_parser

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BUCKETS = [
    "fetch",
    "run",
    "report",
    "persist",
    "index",
    "events",
    "(de)serialisation",
    "redis client",
    "socket I/O",
    "file I/O",
    "asyncio",
    "other core",
    "other",
]
# Builtins that are the work of one bucket; other builtins go to their caller's bucket.
BUILTIN_BUCKETS = [
    ("sqlite3", "index"),
    ("_json", "(de)serialisation"),
    ("json", "(de)serialisation"),
    ("hiredis", "redis client"),
    ("select.epoll", "asyncio"),
    ("_socket", "socket I/O"),
    ("posix.fsync", "file I/O"),
    ("posix.write", "file I/O"),
    ("posix.pwrite", "file I/O"),
    ("_io.", "file I/O"),
]
# The runtime under any path, last in each path table (the core's own code before it).
RUNTIME_BUCKETS = [
    ("/redis/", "redis client"),
    ("/asyncio/", "asyncio"),
    ("/selectors.py", "asyncio"),
    ("/concurrent/futures/", "asyncio"),
    ("/threading.py", "asyncio"),
    ("/core/", "other core"),
]
# Module path fragments to buckets, first match wins (queue.py and pool.py are split
# by function below).
PATH_BUCKETS = [
    ("/core/jobs/scripts.py", "fetch"),
    ("/core/watchdog/", "run"),
    ("/core/heroscript/", "run"),
    ("/core/jobs/persister.py", "persist"),
    ("/core/ourdb/", "persist"),
    ("/core/jobs/index.py", "index"),
    ("/sqlite3/", "index"),
    ("/core/events.py", "events"),
    ("/core/jobs/relay.py", "events"),
    ("/json/", "(de)serialisation"),
    ("/core/jobs/model.py", "(de)serialisation"),
    ("/core/api/wire.py", "(de)serialisation"),
    *RUNTIME_BUCKETS,
]
REPORT_FUNCS = {"complete_many"}
# Helpers any code calls: their time goes to the caller's bucket, like a builtin's.
HELPERS = (
    "/dataclasses.py",
    "/enum.py",
    "/typing.py",
    "/functools.py",
    "/contextlib.py",
    "/abc.py",
    "/copy.py",
    "/weakref.py",
    "/_weakrefset.py",
    "/collections/",
)


def class_lines(path: Path, name: str) -> range:
    """The line span of a class in a source file (empty if it is not there)."""
    try:
        tree = ast.parse(path.read_text())
    except OSError:
        return range(0)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == name:
            return range(node.lineno, (node.end_lineno or node.lineno) + 1)
    return range(0)


REPORTER = class_lines(ROOT / "core" / "watchdog" / "pool.py", "Reporter")

Key = tuple[str, int, str]


def is_helper(path: str) -> bool:
    """A module whose functions' time goes to their callers (see HELPERS)."""
    return path.endswith(HELPERS) or any(h in path for h in HELPERS if h.endswith("/"))


def bucket_by(
    key: Key,
    builtins: Sequence[tuple[str, str]],
    paths: Sequence[tuple[str, str]],
    rule: Callable[[str, int, str], str | None],
) -> str | None:
    """A function's bucket: a builtin's by name, else `rule`'s, else the first path match.

    None for a builtin of no bucket and for a helper (their time goes to their callers).
    """
    file, line, func = key
    if file == "~":
        return next((b for frag, b in builtins if frag in func), None)
    path = file.replace(os.sep, "/")
    if is_helper(path):
        return None
    return rule(path, line, func) or next((b for frag, b in paths if frag in path), "other")


def _run_rule(path: str, line: int, func: str) -> str | None:
    # queue.py and pool.py hold both fetch and report code: split by function.
    if path.endswith("/core/jobs/queue.py"):
        return "report" if func in REPORT_FUNCS else "fetch"
    if path.endswith("/core/watchdog/pool.py") and line in REPORTER:
        return "report"
    if "publish" in func and "/core/" in path:
        return "events"
    return None


def bucket_of(key: Key) -> str | None:
    """The bucket of a Python function or an own-bucket builtin; None for other builtins."""
    return bucket_by(key, BUILTIN_BUCKETS, PATH_BUCKETS, _run_rule)


def buckets(
    stats: pstats.Stats,
    unprofiled: dict[str, float] | None = None,
    bucket_of: Callable[[Key], str | None] = bucket_of,
    names: Sequence[str] = BUCKETS,
) -> dict[str, float]:
    """Seconds of own time per bucket; a builtin's or helper's time split over its callers.

    `bucket_of` and `names` sort another path's functions (bench.profile_submit's).
    """
    table: dict[Key, Any] = stats.stats  # type: ignore[attr-defined]
    memo: dict[Key, dict[str, float]] = {}

    def shares(key: Key, depth: int = 0) -> dict[str, float]:
        # Which buckets a function's time belongs to, as fractions; callers are followed
        # up a few levels (a helper called by a helper), then "other".
        own = bucket_of(key)
        if own is not None:
            return {own: 1.0}
        if key in memo:
            return memo[key]
        memo[key] = {"other": 1.0}  # a guard against call cycles while this one resolves
        callers = table.get(key, (0, 0, 0.0, 0.0, {}))[4]
        weights = {caller: v[2] for caller, v in callers.items() if v[2] > 0}
        total = sum(weights.values())
        if depth > 6 or total <= 0:
            return memo[key]
        out: dict[str, float] = {}
        for caller, weight in weights.items():
            for bucket, part in shares(caller, depth + 1).items():
                out[bucket] = out.get(bucket, 0.0) + part * weight / total
        memo[key] = out
        return out

    result = dict.fromkeys(names, 0.0)
    for key, (_cc, _nc, tt, _ct, _callers) in table.items():
        for bucket, part in shares(key).items():
            result[bucket] += tt * part
    for name, seconds in (unprofiled or {}).items():
        result["persist" if name.startswith("ourdb-writer") else "other"] += seconds
    return result


def cpu_profiler() -> cProfile.Profile:
    """A profiler on the thread's CPU clock: time blocked in epoll or a lock is not work."""
    return cProfile.Profile(time.thread_time_ns, 1e-9)


@dataclass
class Profiles:
    """cProfile profilers of one process: the main thread's and one per new thread.

    Threads are profiled only if they start after `start()`, so the caller hands
    asyncio a fresh default executor at the same moment (`swap_executor`). A thread's
    profiler is read only once its thread has ended: reading a running one from another
    thread closes its open calls on the reader's CPU clock, which is garbage.
    """

    main: cProfile.Profile = field(default_factory=cpu_profiler)
    threads: list[tuple[threading.Thread, cProfile.Profile]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Threads that were running before start() (OurDB's writer) cannot be profiled in
    # 3.11; their CPU clocks are read instead, and the time goes to a bucket by name.
    before: dict[str, float] = field(default_factory=dict)
    unprofiled: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def _old_threads() -> dict[str, float]:
        clocks = {}
        for thread in threading.enumerate():
            if thread is threading.current_thread() or thread.ident is None:
                continue
            try:
                clock = time.pthread_getcpuclockid(thread.ident)
                clocks[f"{thread.name}#{thread.ident}"] = time.clock_gettime(clock)
            except OSError:  # it ended meanwhile
                continue
        return clocks

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        # threading calls this as the new thread's first profile function; enabling a
        # profiler there replaces it, so the thread runs under cProfile from then on.
        prof = cpu_profiler()
        with self.lock:
            self.threads.append((threading.current_thread(), prof))
        prof.enable()

    def start(self) -> None:
        """Profile this thread, and every thread started from now on."""
        self.before = self._old_threads()
        threading.setprofile(self._hook)
        self.main.enable()

    def stop(self) -> None:
        """Stop profiling this thread and new threads."""
        self.main.disable()
        threading.setprofile(None)
        after = self._old_threads()
        self.unprofiled = {
            name.split("#")[0]: after[name] - cpu
            for name, cpu in self.before.items()
            if name in after
        }

    def stats(self) -> tuple[pstats.Stats, int]:
        """Every ended thread's figures and the main thread's, merged; threads left out."""
        stats = pstats.Stats(self.main)
        with self.lock:
            threads = list(self.threads)
        alive = 0
        for thread, prof in threads:
            if thread.is_alive():
                alive += 1
            else:
                stats.add(prof)
        return stats, alive


def swap_executor(loop: asyncio.AbstractEventLoop) -> ThreadPoolExecutor:
    """Give the loop a fresh default executor (its threads start later); the new one."""
    executor = ThreadPoolExecutor()
    loop.set_default_executor(executor)
    return executor


def shim(out: Path, argv: list[str]) -> None:
    """Run the `heroagent` command line; profile it from SIGUSR1 on, write the stats on exit.

    The bench sends SIGUSR1 when the first job is done, so the worker's start-up
    (imports, the actor registry) stays out, as it does from the CPU figures.
    """
    import signal

    from heroagent_tui.cli import main

    profiles = Profiles()

    def begin(signum: int, frame: Any) -> None:
        # Runs in the main thread between two steps of the worker's event loop.
        swap_executor(asyncio.get_running_loop())
        profiles.start()

    signal.signal(signal.SIGUSR1, begin)
    sys.argv = ["heroagent", *argv]
    try:
        main()
    except SystemExit:
        pass
    finally:
        # asyncio.run has shut the (swapped) default executor down: its threads ended.
        profiles.stop()
        profiles.stats()[0].dump_stats(str(out))
        Path(f"{out}.threads.json").write_text(json.dumps(profiles.unprofiled))


@dataclass
class Result:
    """A profiled drain: seconds per bucket and CPU seconds for the engine and the worker.

    `n` counts the jobs done inside the window (all but the first).
    """

    n: int
    seconds: float
    engine: dict[str, float]
    engine_cpu: float
    worker: dict[str, float] | None
    worker_cpu: float | None


async def profiled_drain(url: str, work: Path, n: int, slots: int, workers: int = 1) -> Result:
    """One drain of `n` no-op jobs with the engine and its worker under cProfile."""
    from bench import jobs_hero
    from bench.peers.common import proc_cpu, tree_cpu
    from core.engine import Engine

    stats_file = work / "worker.prof"
    launcher = [sys.executable, "-m", "bench.profile", "--shim", str(stats_file), "--"]
    async with Engine(jobs_hero.engine_config(work / "engine", url)) as engine:
        with engine.bus.subscribe(maxsize=4 * n + 1_000) as sub:
            await jobs_hero.queue_jobs(engine, n)
            sub.drain()
            loop = asyncio.get_running_loop()
            profiles = Profiles()
            procs: list[subprocess.Popen[bytes]] = []
            dog = None
            marks: list[tuple[float, float, float]] = []

            def first_done() -> None:
                # The window is first job done -> last, as for the CPU figures.
                for proc in procs:
                    os.kill(proc.pid, signal.SIGUSR1)
                executors.append(swap_executor(loop))
                mark()
                profiles.start()

            def mark() -> None:
                worker = tree_cpu(procs[0].pid) if procs else 0.0
                marks.append((time.perf_counter(), proc_cpu(os.getpid(), reaped=False), worker))

            executors: list[ThreadPoolExecutor] = []
            try:
                if workers:
                    procs = jobs_hero.start_workers(1, url, work, slots, launcher)
                else:
                    dog = jobs_hero.local_watchdog(engine, slots)
                    await dog.start()
                await jobs_hero.count_ended(sub, n, jobs_hero.DRAIN_TIMEOUT, first_done)
                profiles.stop()
                mark()
                # Let the profiled threads end, so their figures can be read.
                swap_executor(loop)
                await asyncio.to_thread(executors[0].shutdown, wait=True)
                engine_stats, alive = profiles.stats()
                if alive:
                    print(f"   profile: {alive} engine thread(s) still running, left out")
            finally:
                if dog is not None:
                    await dog.stop()
                jobs_hero.stop_workers(procs)
    (t0, e0, w0), (t1, e1, w1) = marks
    return Result(
        n - 1,
        t1 - t0,
        buckets(engine_stats, profiles.unprofiled),
        e1 - e0,
        None,
        (w1 - w0) if workers else None,
    )


def profile(url: str, work: Path, n: int, slots: int, workers: int = 1) -> Result:
    """Run the profiled drain; the worker's buckets read from the stats it wrote on exit."""
    result = asyncio.run(profiled_drain(url, work, n, slots, workers))
    if workers:
        stats_file = work / "worker.prof"
        extra = json.loads(Path(f"{stats_file}.threads.json").read_text())
        result.worker = buckets(pstats.Stats(str(stats_file)), extra)
    return result


def rows(result: Result, scale: dict[str, float] | None = None) -> list[list[str]]:
    """The table of µs per job per bucket (and %), engine and worker side by side.

    `scale` maps "engine"/"worker" to the µs/job the process used without the
    profiler; given, a column shows each bucket's share of that.
    """
    sides = [("engine", result.engine, result.engine_cpu)]
    if result.worker is not None and result.worker_cpu is not None:
        sides.append(("worker", result.worker, result.worker_cpu))
    head = ["bucket"]
    for name, _, _ in sides:
        head += [f"{name} µs/job", "%"] + ([f"{name} scaled"] if scale and name in scale else [])
    table = [head]
    totals = {name: sum(b.values()) for name, b, _ in sides}
    for bucket in [*BUCKETS, "total (own time)"]:
        row = [bucket]
        for name, b, _ in sides:
            secs = totals[name] if bucket.startswith("total") else b[bucket]
            share = secs / totals[name] if totals[name] else 0.0
            row += [f"{1e6 * secs / result.n:,.1f}", f"{100 * share:.0f}"]
            if scale and name in scale:
                row.append(f"{share * scale[name]:,.1f}")
        table.append(row)
    row = ["process CPU under the profiler"]
    for name, _, cpu in sides:
        row += [f"{1e6 * cpu / result.n:,.1f}", ""] + ([""] if scale and name in scale else [])
    table.append(row)
    return table


def print_profile(result: Result, scale: dict[str, float] | None = None) -> None:
    """Print the bucket table."""
    table = rows(result, scale)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for k, r in enumerate(table):
        cells = zip(r, widths, strict=True)
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(cells)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(
        f"profiled drain: {result.n:,} jobs in {result.seconds:.2f} s under cProfile; "
        "scaled = share x the process's CPU µs/job measured without the profiler"
    )


def main(argv: list[str] | None = None) -> int:
    """Run one profiled drain against a throwaway valkey and print the buckets."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["--shim"]:
        # --shim OUT -- heroagent args...: run inside the worker process.
        shim(Path(args_in[1]), args_in[3:])
        return 0
    parser = script_parser("bench.profile", __doc__)
    parser.add_argument("--jobs", type=int, default=5_000, help="jobs in the drain")
    parser.add_argument("--slots", type=int, default=20, help="job slots of the worker")
    parser.add_argument(
        "--workers",
        type=int,
        choices=[0, 1],
        default=1,
        help="1: one heroagent worker; 0: the engine's own watchdog",
    )
    args = parser.parse_args(args_in)
    from bench.valkey import scratch_valkey

    with scratch_valkey(RESULTS, "profile-") as (work, server):
        result = profile(server.url, work, args.jobs, args.slots, args.workers)
    print_profile(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
