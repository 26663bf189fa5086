"""Job throughput and latency: HeroAgent against RQ, arq, Celery, Dramatiq, Huey and SAQ.

Run `python -m bench.jobs` (`--quick` for a smoke run, `--only heroagent` to skip the
peers). Everything runs against one valkey-server started here (no persistence),
flushed before each run. The workload is a no-op job whose result is stored: for
HeroAgent `!!fake.return_success` ending `done` in OurDB (durable history, which no
peer keeps); for the peers a function returning "ok", its result in Redis.

- Drain: N jobs queued first, then timed from starting the worker process(es) to the
  last result; startup (to the first result) is shown apart. Runs alternate between
  systems, so load from elsewhere on the machine hits all alike; median [min-max].
- Idle latency: one waiting worker, random 50-550 ms gaps, submit -> result in hand.
- RSS: a fresh engine process opening a history of many ended jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import jobs_hero
from bench.jobs_peers import PEERS, PeerSpec, run_peer, venv_python
from bench.valkey import Valkey, start_valkey

RESULTS = Path(__file__).resolve().parent / "results"
# Job slots per `heroagent worker` process. One worker draining 10k jobs on two cores
# did 1.0k, 1.25k, 1.56k and 1.19k jobs/s with 5, 10, 20 and 50 slots.
SLOTS = 20
TARGET_RATIO = 5.0
TARGET_RSS_MB = 300.0


@dataclass(frozen=True)
class Plan:
    """How much work each figure does."""

    jobs: int
    runs: int
    samples: int
    rss_jobs: int


FULL = Plan(jobs=20_000, runs=3, samples=200, rss_jobs=1_000_000)
QUICK = Plan(jobs=500, runs=1, samples=20, rss_jobs=10_000)


@dataclass
class System:
    """One line of the table and what was measured for it."""

    key: str
    label: str
    peer: bool
    drain: Callable[[Valkey, Path, int], dict[str, float]]
    latency: Callable[[Valkey, Path, int], list[float]] | None = None
    runs: list[dict[str, float]] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)

    def rates(self) -> list[float]:
        """Jobs per second of each run."""
        return [r["n"] / r["total_s"] for r in self.runs]

    def median_rate(self) -> float:
        """Median jobs per second (0 when nothing ran)."""
        return statistics.median(self.rates()) if self.runs else 0.0

    def p(self, q: float) -> float | None:
        """The q-quantile of the latency samples, in seconds."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hero_systems(slots: int) -> list[System]:
    """HeroAgent with one and two worker processes, and with the engine's own watchdog."""

    def drain(workers: int) -> Callable[[Valkey, Path, int], dict[str, float]]:
        def run(server: Valkey, work: Path, n: int) -> dict[str, float]:
            d = asyncio.run(jobs_hero.drain(server.url, work, n, workers, slots))
            return {
                "n": d.n,
                "enqueue_s": d.enqueue_s,
                "startup_s": d.startup_s,
                "total_s": d.total_s,
            }

        return run

    def latency(server: Valkey, work: Path, samples: int) -> list[float]:
        return asyncio.run(jobs_hero.latency(server.url, work, samples, slots))

    return [
        System(
            "heroagent", f"HeroAgent, 1 worker process ({slots} slots)", False, drain(1), latency
        ),
        System("heroagent", f"HeroAgent, 2 worker processes ({slots} slots each)", False, drain(2)),
        System("heroagent", f"HeroAgent, in-process watchdog ({slots} slots)", False, drain(0)),
    ]


def peer_system(peer: PeerSpec) -> System:
    """A peer library, run through its script in its own venv."""

    def drain(server: Valkey, work: Path, n: int) -> dict[str, float]:
        return run_peer(peer, "drain", server.url, work / f"{peer.key}.log", n=n)

    def latency(server: Valkey, work: Path, samples: int) -> list[float]:
        result = run_peer(peer, "latency", server.url, work / f"{peer.key}.log", samples=samples)
        return [float(s) for s in result["samples"]]

    return System(peer.key, peer.label, True, drain, latency)


def measure(systems: list[System], plan: Plan, server: Valkey, work: Path) -> None:
    """Drain runs (alternating between systems), then the latency samples."""
    for run in range(plan.runs):
        for n, system in enumerate(systems):
            server.flushall()
            result = system.drain(server, work / f"run{run}-{n}", plan.jobs)
            system.runs.append(result)
            rate = result["n"] / result["total_s"]
            print(f"   run {run + 1}/{plan.runs} {system.label}: {rate:,.0f} jobs/s", flush=True)
    for n, system in enumerate(systems):
        if system.latency is not None:
            server.flushall()
            system.samples = system.latency(server, work / f"latency-{n}", plan.samples)
            print(
                f"   latency {system.label}: p50 {1000 * (system.p(0.5) or 0):.1f} ms", flush=True
            )


def measure_rss(plan: Plan, server: Valkey, work: Path) -> dict[str, float]:
    """Fill a history with `plan.rss_jobs` ended jobs; a fresh engine's RSS on it."""
    server.flushall()
    data = work / "rss"
    fill_s = asyncio.run(jobs_hero.fill_history(server.url, data, plan.rss_jobs))
    server.flushall()
    result = jobs_hero.measure_rss(server.url, data)
    result["fill_s"] = fill_s
    result["jobs"] = plan.rss_jobs
    return result


def ms(seconds: float | None) -> str:
    """Seconds as milliseconds for the table."""
    return "-" if seconds is None else f"{1000 * seconds:,.1f}"


def print_table(systems: list[System], rss: dict[str, float] | None) -> None:
    """The table: rate (median [min-max]), steady rate, startup, latencies, ratios."""
    peers = [s for s in systems if s.peer and s.runs]
    best = max(peers, key=lambda s: s.median_rate(), default=None)
    fastest = min((s for s in peers if s.samples), key=lambda s: s.p(0.5) or 0.0, default=None)
    head = (
        "system",
        "jobs/s median [min-max]",
        "steady/s",
        "startup s",
        "p50 ms",
        "p99 ms",
        "rate/best peer",
        "p50/best peer",
    )
    cells = [head]
    for s in systems:
        rates = s.rates()
        steady = [
            (r["n"] - 1) / (r["total_s"] - r["startup_s"])
            for r in s.runs
            if r["total_s"] > r["startup_s"]
        ]
        rate_ratio = f"{s.median_rate() / best.median_rate():.2f}x" if best and s.runs else "-"
        p50, best_p50 = s.p(0.5), fastest.p(0.5) if fastest else None
        lat_ratio = f"{p50 / best_p50:.2f}x" if p50 and best_p50 else "-"
        cells.append(
            (
                s.label,
                f"{s.median_rate():,.0f} [{min(rates):,.0f}-{max(rates):,.0f}]" if rates else "-",
                f"{statistics.median(steady):,.0f}" if steady else "-",
                f"{statistics.median(r['startup_s'] for r in s.runs):.2f}" if s.runs else "-",
                ms(p50),
                ms(s.p(0.99)),
                rate_ratio,
                lat_ratio,
            )
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print("rate/best peer: >1 is faster than the fastest peer; p50/best peer: <1 is quicker.")
    print("HeroAgent counts a job when its end is durable in OurDB; peers when Redis has it.")
    verdicts(systems, best, fastest, rss)


def verdicts(
    systems: list[System], best: System | None, fastest: System | None, rss: dict[str, float] | None
) -> None:
    """The issue's targets, each met or missed, with the figures."""
    hero = [s for s in systems if not s.peer and s.runs]
    if hero and best is not None:
        top = max(hero, key=lambda s: s.median_rate())
        ratio = top.median_rate() / best.median_rate()
        mark = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(
            f"target throughput >= {TARGET_RATIO:g}x best peer ({best.label}): {mark}, "
            f"{ratio:.2f}x ({top.label})"
        )
    hero_lat = next((s for s in hero if s.samples), None)
    if hero_lat is not None and fastest is not None:
        ours, theirs = hero_lat.p(0.5) or 0.0, fastest.p(0.5) or 0.0
        mark = "met" if ours <= theirs else "MISSED"
        print(
            f"target p50 latency <= best peer ({fastest.label}, {ms(theirs)} ms): {mark}, "
            f"{ms(ours)} ms"
        )
    if rss is not None:
        jobs = int(rss["jobs"])
        if jobs < 1_000_000:
            mark = "not judged below 1M jobs"
        else:
            mark = "met" if rss["rss_mb"] < TARGET_RSS_MB else "MISSED"
        print(
            f"engine RSS with {jobs:,} jobs in history: {rss['rss_mb']:.0f} MB "
            f"(peak {rss['hwm_mb']:.0f} MB, started in {rss['start_s']:.2f} s; history "
            f"filled in {rss['fill_s']:.0f} s); target < {TARGET_RSS_MB:g} MB at 1M: {mark}"
        )


def main(argv: list[str] | None = None) -> int:
    """Measure the chosen systems and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1 run, 500 jobs, 20 samples")
    names = ["heroagent"] + [p.key for p in PEERS]
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join(names)}")
    parser.add_argument("--jobs", type=int, help="jobs per drain run")
    parser.add_argument("--runs", type=int, help="drain runs per system")
    parser.add_argument("--samples", type=int, help="latency samples per system")
    parser.add_argument("--rss-jobs", type=int, help="jobs in the history for RSS (0: skip)")
    parser.add_argument("--slots", type=int, default=SLOTS, help="job slots per HeroAgent worker")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(
        jobs=args.jobs or base.jobs,
        runs=args.runs or base.runs,
        samples=args.samples or base.samples,
        rss_jobs=base.rss_jobs if args.rss_jobs is None else args.rss_jobs,
    )
    chosen = set(args.only.split(",")) if args.only else set(names)
    if unknown := chosen - set(names):
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    systems = hero_systems(args.slots) if "heroagent" in chosen else []
    systems += [peer_system(p) for p in PEERS if p.key in chosen]
    for peer in PEERS:
        if peer.key in chosen:
            venv_python(peer.venv)  # build venvs before anything is timed
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="jobs-", dir=RESULTS))
    server = start_valkey(work / "valkey")
    print(
        f"   {plan.jobs:,} jobs x {plan.runs} runs, {plan.samples} latency samples, "
        f"valkey on {server.url}",
        flush=True,
    )
    started = time.monotonic()
    try:
        measure(systems, plan, server, work)
        rss = measure_rss(plan, server, work) if "heroagent" in chosen and plan.rss_jobs else None
    finally:
        server.stop()
    print_table(systems, rss)
    print(f"   ({time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(summary(systems, rss, plan), indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def summary(systems: list[System], rss: dict[str, float] | None, plan: Plan) -> dict[str, Any]:
    """Everything measured, for --json."""
    return {
        "plan": plan.__dict__,
        "systems": [{"label": s.label, "runs": s.runs, "latency_s": s.samples} for s in systems],
        "rss": rss,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
