"""Where the wall-clock time of one submit goes: `EngineAPI.submit` one call at a time, by stage.

Run `python -m bench.trace_submit` (`--jobs N`). The engine runs in this process against
a throwaway valkey-server, with no workers, as the "enqueue one/s" column of
`python -m bench.jobs` measures it. Each stage of the path is timed around its own call
(medians and 90th percentiles, µs per submit): the checks, the OurDB write as the
caller awaits it and as the writer thread runs it (and its fdatasync), the index
write, the Redis `ENQUEUE` call and the bus. Beside them, what the machine gives: a bare
fdatasync of a small write in the same directory, a Redis round trip (`PING`, a trivial
`EVAL`), and valkey's own time per `ENQUEUE` (`INFO commandstats`). The gap between a
stage as awaited and as run is its hand-offs (thread hops, loop turns).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import script_parser
from bench.profile import RESULTS

STAGES = [
    ("call", "EngineAPI.submit, whole"),
    ("batch", "JobManager._submit_each (its batch of one)"),
    ("checks", "JobManager._check"),
    ("durable write", "AsyncOurDB.start_set_many_early, to its durable answer"),
    ("commit", "OurDB.commit on the writer thread"),
    ("fdatasync", "its journal sync"),
    ("index", "JobIndex.upsert_now"),
    ("enqueue", "JobQueue.enqueue (one ENQUEUE call)"),
    ("bus", "JobManager._tell_bus"),
]


class Timings:
    """Wall-clock seconds per call of patched methods, by stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        """Time every call of `owner.name` (an instance attribute shadows the method)."""
        method = getattr(owner, name)
        seconds = self.seconds[stage]
        if asyncio.iscoroutinefunction(method):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await method(*args, **kwargs)
                finally:
                    seconds.append(time.perf_counter() - start)

            setattr(owner, name, timed_async)
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                got = method(*args, **kwargs)
            except BaseException:
                seconds.append(time.perf_counter() - start)
                raise
            # `start_set_many_early` answers (written, durable): timed to the durable one.
            answer = got[-1] if isinstance(got, tuple) and got else got
            if isinstance(answer, asyncio.Future):
                # A write started (`start_set_many`): timed until its answer, as awaited.
                answer.add_done_callback(lambda _: seconds.append(time.perf_counter() - start))
            else:
                seconds.append(time.perf_counter() - start)
            return got

        setattr(owner, name, timed)

    def clear(self) -> None:
        """Forget the warm-up's calls."""
        for seconds in self.seconds.values():
            seconds.clear()


def quantiles_us(seconds: list[float]) -> tuple[float, float]:
    """Median and 90th percentile, in µs."""
    if len(seconds) < 2:
        return (seconds[0] * 1e6, seconds[0] * 1e6) if seconds else (0.0, 0.0)
    cuts = statistics.quantiles(seconds, n=10)
    return statistics.median(seconds) * 1e6, cuts[-1] * 1e6


async def timed_calls(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    """Seconds of each of `n` calls made one after the other."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)
    return out


def fdatasync_seconds(
    directory: Path, n: int, gaps: tuple[float, float] | None = None
) -> list[float]:
    """Seconds of each of `n` fdatasyncs of a 300-byte write into a preallocated file.

    With `gaps` (seconds, low and high), each one follows an idle pause drawn between them,
    as an idle round's syncs do: on a virtual disk such a sync can take several times a
    busy one.
    """
    path = directory / "fdatasync.probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    rng = random.Random(7)
    try:
        os.pwrite(fd, bytes(1 << 20), 0)
        os.fsync(fd)
        out = []
        for i in range(n):
            if gaps is not None:
                time.sleep(rng.uniform(*gaps))
            start = time.perf_counter()
            os.pwrite(fd, b"x" * 300, (i * 300) % (1 << 20))
            os.fdatasync(fd)
            out.append(time.perf_counter() - start)
        return out
    finally:
        os.close(fd)
        path.unlink()


async def trace(url: str, work: Path, n: int) -> tuple[float, dict[str, list[float]], float]:
    """Submit `n` jobs one at a time; jobs/s, the seconds by stage, valkey's µs per ENQUEUE."""
    from bench.jobs_hero import SCRIPT, TOPIC, engine_config, queue_jobs
    from core.engine import Engine

    timings = Timings()
    async with Engine(engine_config(work / "engine", url)) as engine:
        await queue_jobs(engine, 100)
        jobs = engine.jobs
        timings.wrap(jobs, "_submit_each", "batch")
        timings.wrap(jobs, "_check", "checks")
        timings.wrap(jobs.db, "start_set_many_early", "durable write")
        timings.wrap(jobs.db.db, "commit", "commit")
        timings.wrap(jobs.db.db._journal, "sync", "fdatasync")
        timings.wrap(jobs.index, "upsert_now", "index")
        timings.wrap(jobs.queue, "enqueue", "enqueue")
        timings.wrap(jobs, "_tell_bus", "bus")
        redis = jobs.queue.redis

        async def submit() -> None:
            await engine.api.submit(SCRIPT, topic=TOPIC)

        await timed_calls(200, submit)  # warm the path up
        timings.clear()
        await redis.config_resetstat()
        start = time.perf_counter()
        timings.seconds["call"] = await timed_calls(n, submit)
        rate = n / (time.perf_counter() - start)
        stats = await redis.info("commandstats")
        timings.seconds["redis PING"] = await timed_calls(1_000, redis.ping)
        timings.seconds["redis EVAL 'return 1'"] = await timed_calls(
            1_000, lambda: redis.eval("return 1", 0)
        )
    server_us = float(stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0))
    return rate, timings.seconds, server_us


def main(argv: list[str] | None = None) -> int:
    """Trace single submits against a throwaway valkey and print the stages."""
    parser = script_parser("bench.trace_submit", __doc__)
    parser.add_argument("--jobs", type=int, default=3_000, help="jobs submitted")
    args = parser.parse_args(argv)
    from bench.valkey import scratch_valkey

    with scratch_valkey(RESULTS, "trace-submit-") as (work, server):
        rate, seconds, server_us = asyncio.run(trace(server.url, work, args.jobs))
    seconds["bare fdatasync"] = fdatasync_seconds(work, 1_000)
    described = dict(STAGES)
    print(f"{args.jobs:,} submits one at a time: {rate:,.0f}/s")
    # Calls per submit: 1.00 each along the path when nothing is shared or skipped.
    print(f"{'stage':<24} {'p50 µs':>8} {'p90 µs':>8} {'calls/submit':>12}  what")
    for stage in [name for name, _ in STAGES] + ["bare fdatasync"]:
        p50, p90 = quantiles_us(seconds[stage])
        what = described.get(stage, "this machine")
        per = f"{len(seconds[stage]) / args.jobs:.2f}" if stage in described else ""
        print(f"{stage:<24} {p50:>8.0f} {p90:>8.0f} {per:>12}  {what}")
    for stage in ("redis PING", "redis EVAL 'return 1'"):
        p50, p90 = quantiles_us(seconds[stage])
        print(f"{stage:<24} {p50:>8.0f} {p90:>8.0f} {'':>12}  the engine's Redis client")
    print(f"{'valkey per ENQUEUE':<24} {server_us:>8.0f} {'':>8} {'':>12}  INFO commandstats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
