"""Where the CPU of a submit goes: the engine and the client process, µs per job, in buckets.

Run `python -m bench.profile_submit` (`--mode single` for one job per call from
concurrent callers, `--distinct` for params that differ per job). The engine runs in
this process (no workers, so nothing but the submits runs); the client is a separate
process, `heroagent.Client.submit_many` in batches of 1,000 (bulk) or CALLERS
coroutines calling `AsyncClient.submit` (single). Each mode runs twice: once plain, for
the rate and each process's CPU per job (engine, client, valkey-server), then under
cProfile in every thread of both processes (bench.profile's `Profiles`), for the shares.
The scaled columns are each share times the plain run's CPU per job, as bench.profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import script_parser
from bench.profile import (
    RESULTS,
    ROOT,
    RUNTIME_BUCKETS,
    Key,
    Profiles,
    bucket_by,
    buckets,
    swap_executor,
)

BUCKETS = [
    "request channel",
    "wire (de)serialisation",
    "checks",
    "records",
    "persist",
    "index",
    "enqueue",
    "events",
    "redis client",
    "socket I/O",
    "asyncio",
    "other core",
    "other",
]
PATH_BUCKETS = [
    ("/core/remote.py", "request channel"),
    ("/core/channel.py", "request channel"),
    ("/heroagent/", "request channel"),
    ("/core/api/wire.py", "wire (de)serialisation"),
    ("/core/api/views.py", "wire (de)serialisation"),
    ("/json/", "wire (de)serialisation"),
    ("/core/heroscript/", "checks"),
    ("/core/jobs/validation.py", "checks"),
    ("/core/jobs/model.py", "records"),
    ("/core/ourdb/", "persist"),
    ("/core/jobs/index.py", "index"),
    ("/sqlite3/", "index"),
    ("/core/jobs/queue.py", "enqueue"),
    ("/core/events.py", "events"),
    ("/core/jobs/relay.py", "events"),
    *RUNTIME_BUCKETS,
]
# Builtins that are the work of one bucket; other builtins go to their caller's bucket.
BUILTIN_BUCKETS = [
    ("sqlite3", "index"),
    ("json", "wire (de)serialisation"),
    ("hiredis", "redis client"),
    ("select.epoll", "asyncio"),
    ("_socket", "socket I/O"),
    ("posix.fsync", "persist"),
    ("posix.write", "persist"),
    ("posix.pwrite", "persist"),
    ("_io.", "persist"),
]
CHECK_FUNCS = {"_check", "_policy", "_check_names", "_links", "_batch_parents"}
EVENT_FUNCS = {"_announce", "_tell_bus", "_publish", "_events_message"}
CALLERS = 32
SCRIPT = "!!fake.return_success message:ok\n"
TOPIC = "bench"

# The client process: `mode n url script topic [stats file]`; prints its rate and CPU.
CLIENT = """
import asyncio, json, sys, time
mode, n, url, script, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
distinct = sys.argv[6] == "1"
out = sys.argv[7] if len(sys.argv) > 7 else ""
profiles = None
if out:
    from bench.profile import Profiles
    profiles = Profiles()
    profiles.start()  # before the client's threads start, so they are profiled
from heroagent import AsyncClient, Client
def params(i):
    return script.replace("ok", f"n{i}") if distinct else script
start = time.perf_counter()
cpu = time.process_time()
if mode == "bulk":
    with Client(url) as client:
        for first in range(0, n, 1000):
            client.submit_many([params(i) for i in range(first, min(n, first + 1000))], topic=topic)
else:
    async def main():
        async with AsyncClient(url) as client:
            left = n
            async def caller():
                nonlocal left
                while left > 0:
                    left -= 1
                    await client.submit(params(left), topic=topic)
            await asyncio.gather(*(caller() for _ in range(int(sys.argv[8]))))
    asyncio.run(main())
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
if profiles is not None:
    profiles.stop()
    stats, _ = profiles.stats()
    stats.dump_stats(out)
    open(out + ".threads.json", "w").write(json.dumps(profiles.unprofiled))
print(json.dumps({"per_s": n / seconds, "cpu_s": cpu}))
"""


def _submit_rule(path: str, line: int, func: str) -> str | None:
    # The job manager both checks and announces: split by function.
    if path.endswith("/core/jobs/manager.py"):
        if func in CHECK_FUNCS or func.startswith("check_"):
            return "checks"
        if func in EVENT_FUNCS:
            return "events"
    return None


def submit_bucket(key: Key) -> str | None:
    """The submit-path bucket of a Python function or an own-bucket builtin."""
    return bucket_by(key, BUILTIN_BUCKETS, PATH_BUCKETS, _submit_rule)


@dataclass
class Run:
    """One mode's figures: the rate, CPU µs/job per process, and (profiled) the buckets."""

    per_s: float
    cpu_us: dict[str, float]
    engine: dict[str, float] | None = None
    client: dict[str, float] | None = None


async def one_run(url: str, work: Path, args: argparse.Namespace, profiled: bool) -> Run:
    """Submit `args.jobs` jobs from a client process; with `profiled`, under cProfile."""
    from bench.jobs_hero import engine_config, queue_jobs
    from bench.peers.common import proc_cpu
    from core.engine import Engine

    stats_file = work / f"client-{args.mode}.prof"
    async with Engine(engine_config(work / "engine", url)) as engine:
        await queue_jobs(engine, 100)  # warm the path up
        loop = asyncio.get_running_loop()
        profiles = Profiles()
        executor = swap_executor(loop)
        if profiled:
            profiles.start()
        engine_cpu, server_cpu = proc_cpu(os.getpid(), reaped=False), proc_cpu(args.server_pid)
        argv = [args.mode, str(args.jobs), url, SCRIPT, TOPIC, "1" if args.distinct else "0"]
        argv += [str(stats_file) if profiled else "", str(CALLERS)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, *argv,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "HEROAGENT_CONFIG": os.devnull},
        )  # fmt: skip
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the client failed (exit {process.returncode})")
        engine_cpu = proc_cpu(os.getpid(), reaped=False) - engine_cpu
        server_cpu = proc_cpu(args.server_pid) - server_cpu
        if profiled:
            profiles.stop()
        # Let the profiled threads end, so their figures can be read.
        swap_executor(loop)
        await asyncio.to_thread(executor.shutdown, wait=True)
    got = json.loads(out.decode().strip().splitlines()[-1])
    n = args.jobs
    run = Run(
        got["per_s"],
        {"engine": engine_cpu / n * 1e6, "client": got["cpu_s"] / n * 1e6},
    )
    run.cpu_us["valkey"] = server_cpu / n * 1e6
    if profiled:
        stats, _ = profiles.stats()
        stats.dump_stats(work / f"engine-{args.mode}.prof")  # for a look at single functions
        run.engine = buckets(stats, profiles.unprofiled, submit_bucket, BUCKETS)
    return run


def client_buckets(work: Path, mode: str) -> dict[str, float]:
    """The buckets of the stats the profiled client process wrote."""
    stats_file = work / f"client-{mode}.prof"
    extra = json.loads(Path(f"{stats_file}.threads.json").read_text())
    return buckets(pstats.Stats(str(stats_file)), extra, submit_bucket, BUCKETS)


def table(plain: Run, profiled: Run) -> list[list[str]]:
    """µs/job per bucket: each side's share of its profiled time, times its plain CPU."""
    head = ["bucket", "engine %", "engine µs/job", "client %", "client µs/job"]
    rows = [head]
    sides = [(profiled.engine or {}, plain.cpu_us["engine"])]
    sides.append((profiled.client or {}, plain.cpu_us["client"]))
    totals = [sum(b.values()) or 1.0 for b, _ in sides]
    for bucket in BUCKETS:
        row = [bucket]
        for (b, cpu), total in zip(sides, totals, strict=True):
            share = b.get(bucket, 0.0) / total
            row += [f"{100 * share:.0f}", f"{share * cpu:,.1f}"]
        rows.append(row)
    rows.append(["CPU (no profiler)", "", f"{sides[0][1]:,.1f}", "", f"{sides[1][1]:,.1f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Profile one submit mode against a throwaway valkey and print the buckets."""
    parser = script_parser("bench.profile_submit", __doc__)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs submitted")
    parser.add_argument("--mode", choices=["bulk", "single"], default="bulk")
    parser.add_argument("--distinct", action="store_true", help="different params per job")
    args = parser.parse_args(argv)
    from bench.jobs import render
    from bench.valkey import scratch_valkey

    with scratch_valkey(RESULTS, "profile-submit-") as (work, server):
        args.server_pid = server.process.pid
        server.flushall()
        plain = asyncio.run(one_run(server.url, work / "plain", args, profiled=False))
        server.flushall()
        profiled = asyncio.run(one_run(server.url, work / "profiled", args, profiled=True))
        profiled.client = client_buckets(work / "profiled", args.mode)
    print(render(table(plain, profiled)))
    cpu = ", ".join(f"{k} {v:,.1f}" for k, v in plain.cpu_us.items())
    print(
        f"{args.mode}{' (distinct params)' if args.distinct else ''}: {args.jobs:,} jobs at "
        f"{plain.per_s:,.0f}/s ({profiled.per_s:,.0f}/s profiled); CPU µs/job: {cpu}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
