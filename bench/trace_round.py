"""Where the time of one idle round goes: submit -> result in hand, across the processes.

Run `python -m bench.trace_round` (`--samples N`). As `bench.jobs` measures the idle
latency: an engine in this process, one `heroagent worker` (started through this
module's `--shim`, which patches it the same way), random 50-550 ms gaps, then
`EngineAPI.submit` and `EngineAPI.wait`. Each stage's entry and exit are stamped with
the system-wide monotonic clock in both processes, so one timeline holds them all;
the table gives, per milestone, the median and quartiles of its time after the submit
began (ms), then how long the round's two OurDB commits took beside bare fdatasyncs on
the same disk, back to back and after the same idle gaps. `--show N` prints the last N
rounds' whole timelines. Timing every call
costs a little: the figures sit somewhat above `bench.jobs`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

_LOG: TextIO | None = None

# (stage, owner module, class, method): the stages stamped, in both processes.
PATCHES = [
    ("submit: OurDB write", "core.jobs.manager", "JobManager", "_store"),
    ("submit: ENQUEUE", "core.jobs.queue", "JobQueue", "enqueue"),
    ("worker: fetch", "core.jobs.queue", "JobQueue", "fetch"),
    ("worker: run", "core.watchdog.pool", "WatchDog", "_run_inline"),
    ("worker: COMPLETE", "core.jobs.queue", "JobQueue", "complete_many"),
    ("engine: stream read", "core.jobs.persister", "Persister", "_read"),
    ("engine: persist", "core.jobs.persister", "Persister", "_persist"),
    ("engine: encode", "core.jobs.manager", "JobManager", "_records"),
    ("engine: OurDB commit", "core.ourdb.db", "OurDB", "commit"),
    ("engine: OurDB answer", "core.ourdb.aio", "AsyncOurDB", "_answer"),
    ("engine: index", "core.jobs.index", "JobIndex", "upsert_now"),
    ("engine: wait's first read", "core.jobs.manager", "JobManager", "_stored_now"),
    ("engine: OurDB read in a thread", "core.jobs.manager", "JobManager", "stored_job"),
]
# Milestones of the table: (label, stage, "<" exit or ">" entry, nth occurrence in a round).
MILESTONES = [
    ("submit's OurDB write done", "submit: OurDB write", "<", 0),
    ("submit returned", "submitted", "", 0),
    ("worker has the job", "worker: fetch", "<", 0),
    ("worker sends COMPLETE", "worker: COMPLETE", ">", 0),
    ("engine read end + active", "engine: stream read", "<", 0),
    ("result in hand", "waited", "", 0),
]


def mark(name: str) -> None:
    """Stamp one event with this process's pid."""
    assert _LOG is not None
    _LOG.write(f"{time.monotonic():.7f} {os.getpid()} {name}\n")


def _stamped(stage: str, method: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(method):

        @functools.wraps(method)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            mark(f"{stage}>")
            try:
                return await method(*args, **kwargs)
            finally:
                mark(f"{stage}<")

        return timed_async

    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        mark(f"{stage}>")
        try:
            return method(*args, **kwargs)
        finally:
            mark(f"{stage}<")

    return timed


def patch(out: Path) -> None:
    """Stamp every stage of PATCHES into `out` (line-buffered, appended by each process)."""
    global _LOG
    _LOG = out.open("a", buffering=1)
    import importlib

    for stage, module, owner, name in PATCHES:
        cls = getattr(importlib.import_module(module), owner)
        method = getattr(cls, name, None)
        if method is not None:  # an older checkout may lack one
            setattr(cls, name, _stamped(stage, method))


def shim(out: Path, argv: list[str]) -> None:
    """Run the `heroagent` command line with the stages stamped."""
    patch(out)
    from heroagent_tui.cli import main

    sys.argv = ["heroagent", *argv]
    with contextlib.suppress(SystemExit):
        main()


async def rounds(url: str, work: Path, samples: int, out: Path) -> list[float]:
    """`samples` idle rounds of `bench.jobs_hero.latency`, stamped; the seconds of each."""
    from bench.jobs_hero import latency

    patch(out)
    launcher = [sys.executable, "-m", "bench.trace_round", "--shim", str(out), "--"]
    return await latency(url, work, samples, 20, launcher=launcher, stamp=mark)


def timelines(out: Path) -> list[list[tuple[float, str, str]]]:
    """Each round's events: (ms after its start, pid, event)."""
    found: list[list[tuple[float, str, str]]] = []
    start = 0.0
    for line in out.read_text().splitlines():
        stamp, pid, name = line.split(" ", 2)
        if name == "round":
            start = float(stamp)
            found.append([])
        elif name == "warm-up":
            start = 0.0
        elif start and found:
            found[-1].append(((float(stamp) - start) * 1000, pid, name))
    return found


def milestone(
    events: list[tuple[float, str, str]], stage: str, edge: str, nth: int
) -> float | None:
    """When the `nth` event `stage + edge` of a round happened (ms), if it did."""
    hits = [ms for ms, _, name in events if name == stage + edge]
    return hits[nth] if len(hits) > nth else None


def commit_ms(events: list[tuple[float, str, str]], nth: int) -> float | None:
    """How long the engine's `nth` OurDB commit of a round took (ms), if it made one."""
    start = milestone(events, "engine: OurDB commit", ">", nth)
    end = milestone(events, "engine: OurDB commit", "<", nth)
    return end - start if start is not None and end is not None else None


def main(argv: list[str] | None = None) -> int:
    """Trace idle rounds against a throwaway valkey and print the milestones."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.trace_round",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--samples", type=int, default=30, help="rounds timed")
    parser.add_argument("--show", type=int, default=0, help="print the last N timelines")
    args = parser.parse_args(argv)
    from bench.profile import RESULTS
    from bench.valkey import start_valkey

    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="trace-round-", dir=RESULTS))
    out = work / "stamps.log"
    server = start_valkey(work / "valkey")
    try:
        times = asyncio.run(rounds(server.url, work, args.samples, out))
    finally:
        server.stop()
    found = timelines(out)
    print(f"{len(times)} idle rounds: p50 {statistics.median(times) * 1000:.2f} ms")
    print(f"{'milestone (ms after submit began)':<34} {'p25':>6} {'p50':>6} {'p75':>6}")
    for label, stage, edge, nth in MILESTONES:
        hits = [m for m in (milestone(e, stage, edge, nth) for e in found) if m is not None]
        if len(hits) < 2:
            continue
        q1, q2, q3 = statistics.quantiles(hits, n=4)
        print(f"{label:<34} {q1:>6.2f} {q2:>6.2f} {q3:>6.2f}")
    # The syncs on the path, beside bare ones on the same disk, back to back and after
    # the rounds' idle gaps: what durability costs an idle round here.
    from bench.trace_submit import fdatasync_seconds

    for nth, which in ((0, "the submit's"), (1, "the end's")):
        spans = [commit_ms(e, nth) for e in found]
        hits = [ms for ms in spans if ms is not None]
        if hits:
            print(f"{which + ' OurDB commit (ms)':<34} {'':>6} {statistics.median(hits):>6.2f}")
    busy = statistics.median(fdatasync_seconds(work, 200)) * 1000
    idle = statistics.median(fdatasync_seconds(work, 30, gaps=(0.05, 0.55))) * 1000
    print(f"{'bare fdatasync, back to back (ms)':<34} {'':>6} {busy:>6.2f}")
    print(f"{'bare fdatasync, after a gap (ms)':<34} {'':>6} {idle:>6.2f}")
    for events in found[-args.show :] if args.show else []:
        print("----")
        for ms, pid, name in events:
            print(f"{ms:8.3f} {pid:>7} {name}")
    print(f"stamps: {out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--shim"]:
        # --shim STAMPS -- heroagent args...: inside the worker process.
        shim(Path(sys.argv[2]), sys.argv[4:])
        sys.exit(0)
    sys.exit(main())
