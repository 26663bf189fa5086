"""Job throughput, latency, enqueue and CPU: HeroAgent against nine Redis job systems.

The peers: BullMQ (Node), RQ, arq, Celery, Dramatiq, Huey, SAQ, taskiq and streaq, each
in its documented configuration (the label says which). Run `python -m bench.jobs`
(`--quick` for a smoke run, `--only heroagent` to skip the peers, `--readme` to write
the tables into README.md). Everything runs against one valkey-server started here (no persistence),
flushed before each run. The workload is a no-op job whose result is stored: for
HeroAgent `!!fake.return_success` ending `done` in OurDB (durable history, which no
peer keeps); for the peers a function returning "ok", its result in Redis.

- Drain: N jobs queued first, then 1 (and then 2) worker processes started; the rate
  counts from the first result to the last (N - 1 jobs), as the CPU table does, and the
  startup (starting the workers to the first result) is shown apart: two interpreters
  starting at once on two cores took as long as a third of a 4,000-job drain, and in
  the figure from the start that hid whether a second worker adds anything. Runs
  alternate between systems, so load from elsewhere on the machine hits all alike;
  median [min-max]. HeroAgent's in-process watchdog line is the engine draining alone.
- CPU µs/job: utime+stime from /proc of every process of the system (the engine, each
  worker with its children, valkey-server) from the first result to the last, over
  the jobs done in between; the 1-worker drain's sum is the table's column.
- Idle latency: one waiting worker, random 50-550 ms gaps, submit -> result in hand.
- Enqueue: jobs/s one call at a time with no worker running, and with the library's
  batch API where it has one ("-" where it has none).
- RSS: a fresh engine process opening a history of many ended jobs.
- Profile: one more drain under cProfile (bench.profile), HeroAgent's CPU in buckets.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import jobs_hero, profile, script_parser
from bench.jobs_peers import PEERS, PeerSpec, install, run_peer
from bench.readme import README, load_average, machine, markers, rewrite_block
from bench.valkey import Valkey, start_valkey

RESULTS = Path(__file__).resolve().parent / "results"
README_START, README_END = markers("jobs")
# Job slots per `heroagent worker` process. One worker draining 10k jobs on two cores
# did 1.0k, 1.25k, 1.56k and 1.19k jobs/s with 5, 10, 20 and 50 slots.
SLOTS = 20
RATE = "{:,.0f}/s"
# Two workers drain at least this many times one worker's rate.
TARGET_SCALE = 1.5
# Enqueue rates on the CI machine size (2 cores).
TARGET_BULK_PER_S = 10_000
TARGET_ONE_PER_S = 5_000
TARGET_RSS_MB = 300.0


@dataclass(frozen=True)
class Plan:
    """How much work each figure does."""

    jobs: int
    runs: int
    samples: int
    rss_jobs: int
    enqueue: int
    profile_jobs: int


FULL = Plan(jobs=20_000, runs=3, samples=200, rss_jobs=1_000_000, enqueue=5_000, profile_jobs=5_000)
QUICK = Plan(jobs=500, runs=1, samples=20, rss_jobs=10_000, enqueue=200, profile_jobs=500)
DrainFn = Callable[[Valkey, Path, int, int], dict[str, Any]]


@dataclass
class System:
    """One line of the table and what was measured for it."""

    key: str
    label: str
    peer: bool
    drain: DrainFn | None = None
    # Worker process counts to drain with; 0 is the engine's own watchdog.
    workers: tuple[int, ...] = (1, 2)
    latency: Callable[[Valkey, Path, int], list[float]] | None = None
    enqueue: Callable[[Valkey, Path, int], dict[str, Any]] | None = None
    bulk_api: str = ""
    note: str = ""  # why nothing (or not everything) was measured
    runs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    enqueued: dict[str, Any] = field(default_factory=dict)

    def column(self, workers: int) -> int:
        """The drain column (1 or 2 workers) a worker count is shown in."""
        return max(1, workers)

    def drains(self, column: int) -> list[dict[str, Any]]:
        """The drain runs shown in column 1 or 2."""
        return next((r for w, r in self.runs.items() if self.column(w) == column), [])

    def median_rate(self, column: int = 1) -> float | None:
        """Median jobs per second in that column (None when nothing ran)."""
        runs = self.drains(column)
        return statistics.median(drain_rate(r) for r in runs) if runs else None

    def p(self, q: float) -> float | None:
        """The q-quantile of the latency samples, in seconds."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def cpu(self, column: int = 1) -> dict[str, float] | None:
        """Median CPU µs per job of each process in that column's drains, and the total."""
        runs = [r for r in self.drains(column) if r.get("cpu")]
        if not runs:
            return None
        per: dict[str, list[float]] = {}
        for r in runs:
            jobs = max(1, r["cpu_jobs"])
            for name, seconds in processes(r["cpu"]).items():
                per.setdefault(name, []).append(1e6 * seconds / jobs)
        out = {name: statistics.median(v) for name, v in per.items()}
        out["total"] = sum(out.values())
        return out


def drain_rate(run: dict[str, Any]) -> float:
    """Jobs per second of one drain from its first result to its last (all but the first).

    Both ends are seen by the same probe, whichever system; the workers' start-up is
    the run's `startup_s`, shown apart.
    """
    span = run["total_s"] - run["startup_s"]
    return (run["n"] - 1) / span if span > 0 else float("inf")


def processes(cpu: dict[str, Any]) -> dict[str, float]:
    """A drain's CPU seconds by process name: engine, worker 1.., valkey."""
    out = {"engine": cpu["engine"]} if "engine" in cpu else {}
    for i, seconds in enumerate(cpu["workers"], 1):
        out[f"worker {i}"] = seconds
    out["valkey"] = cpu["server"]
    return out


def hero_systems(slots: int) -> list[System]:
    """HeroAgent with `heroagent worker` processes, with the engine's own watchdog, over HTTP."""

    def drain(server: Valkey, work: Path, n: int, workers: int) -> dict[str, Any]:
        d = asyncio.run(jobs_hero.drain(server.url, work, n, workers, slots, server.process.pid))
        return {
            "n": d.n,
            "enqueue_s": d.enqueue_s,
            "startup_s": d.startup_s,
            "total_s": d.total_s,
            "cpu_jobs": d.n - 1,
            "cpu": d.cpu,
            "cpu_startup": d.cpu_startup,
        }

    def latency(server: Valkey, work: Path, samples: int) -> list[float]:
        return asyncio.run(jobs_hero.latency(server.url, work, samples, slots))

    def enqueue(server: Valkey, work: Path, n: int) -> dict[str, Any]:
        return asyncio.run(jobs_hero.enqueue(server.url, work, n))

    return [
        System(
            "heroagent",
            f"HeroAgent, `heroagent worker` ({slots} slots); enqueue: EngineAPI.submit",
            False,
            drain,
            (1, 2),
            latency,
            enqueue,
            bulk_api="Client.submit_many x1000",
        ),
        System("heroagent", f"HeroAgent, in-process watchdog ({slots} slots)", False, drain, (0,)),
        # Filled from the first line's enqueue run, which times every way in.
        System(
            "heroagent",
            "HeroAgent, HTTP POST /api/jobs (enqueue only)",
            False,
            workers=(),
            bulk_api="POST /api/jobs/batch x1000",
        ),
        System(
            "heroagent",
            f"HeroAgent, {jobs_hero.CALLERS} concurrent AsyncClient.submit (enqueue only)",
            False,
            workers=(),
        ),
    ]


def peer_system(peer: PeerSpec) -> System:
    """A peer library, run through its script in its own venv (or Node folder)."""

    def drain(server: Valkey, work: Path, n: int, workers: int) -> dict[str, Any]:
        log = work / f"{peer.key}.log"
        return run_peer(
            peer, "drain", server.url, log, n=n, workers=workers, server_pid=server.process.pid
        )

    def latency(server: Valkey, work: Path, samples: int) -> list[float]:
        result = run_peer(peer, "latency", server.url, work / f"{peer.key}.log", samples=samples)
        return [float(s) for s in result["samples"]]

    def enqueue(server: Valkey, work: Path, n: int) -> dict[str, Any]:
        return run_peer(peer, "enqueue", server.url, work / f"{peer.key}.log", n=n)

    return System(peer.key, peer.label, True, drain, (1, 2), latency, enqueue, bulk_api=peer.bulk)


def attempt(system: System, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """Run one measurement; a failing peer gets a note instead of stopping the bench."""
    try:
        return call(*args)
    except RuntimeError as exc:
        if not system.peer:
            raise
        system.note = system.note or f"{what} failed: {str(exc).strip().splitlines()[-1][:120]}"
        print(f"   {system.label}: {what} failed:\n{exc}", flush=True)
        return None


def measure(systems: list[System], plan: Plan, server: Valkey, work: Path) -> None:
    """Drain runs (alternating between systems), then latency, then enqueue."""
    for run in range(plan.runs):
        for column in (1, 2):
            for n, system in enumerate(systems):
                if system.note or system.drain is None:
                    continue
                for workers in system.workers:
                    if system.column(workers) != column:
                        continue
                    server.flushall()
                    where = work / f"run{run}-{n}-{workers}"
                    result = attempt(
                        system, "drain", system.drain, server, where, plan.jobs, workers
                    )
                    if result is None:
                        break
                    system.runs.setdefault(workers, []).append(result)
                    print(
                        f"   run {run + 1}/{plan.runs} {system.label}, {workers} worker(s): "
                        f"{drain_rate(result):,.0f} jobs/s from the first result "
                        f"({result['n'] / result['total_s']:,.0f} from starting the "
                        f"workers, {result['startup_s']:.2f} s to the first result)",
                        flush=True,
                    )
    for n, system in enumerate(systems):
        if system.latency is not None and not system.note:
            server.flushall()
            where = work / f"latency-{n}"
            samples = attempt(system, "latency", system.latency, server, where, plan.samples)
            system.samples = samples or []
            print(f"   latency {system.label}: p50 {ms(system.p(0.5))} ms", flush=True)
    for n, system in enumerate(systems):
        if system.enqueue is not None and not system.note:
            server.flushall()
            where = work / f"enqueue-{n}"
            found = attempt(system, "enqueue", system.enqueue, server, where, plan.enqueue)
            system.enqueued = found or {}
            print(f"   enqueue {system.label}: {system.enqueued}", flush=True)
    http = next((s for s in systems if s.label.startswith("HeroAgent, HTTP")), None)
    concurrent = next((s for s in systems if "concurrent AsyncClient" in s.label), None)
    first = systems[0] if systems and not systems[0].peer else None
    if first is not None and first.enqueued:
        got = first.enqueued.get
        if http is not None:
            http.enqueued = {
                "one_per_s": got("http_one_per_s"),
                "bulk_per_s": got("http_bulk_per_s"),
            }
        if concurrent is not None:
            concurrent.enqueued = {"one_per_s": got("submit_per_s")}
    server.flushall()


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


def rate_cell(s: System, column: int) -> str:
    """Median jobs/s of a drain column with its [min-max]."""
    runs = s.drains(column)
    if not runs:
        return "-"
    rates = [drain_rate(r) for r in runs]
    if len(rates) == 1:
        return f"{rates[0]:,.0f}"
    return f"{statistics.median(rates):,.0f} [{min(rates):,.0f}-{max(rates):,.0f}]"


def per_s(value: float | None) -> str:
    """A rate for the table."""
    return "-" if value is None else f"{value:,.0f}"


Metric = Callable[[System], float | None]
# The figures compared with the best peer: name, how to read it, whether more is better.
METRICS: list[tuple[str, Metric, bool]] = [
    ("drain 1 worker", lambda s: s.median_rate(1), True),
    ("drain 2 workers", lambda s: s.median_rate(2), True),
    ("p50", lambda s: s.p(0.5), False),
    ("p99", lambda s: s.p(0.99), False),
    ("enqueue one", lambda s: s.enqueued.get("one_per_s"), True),
    ("enqueue bulk", lambda s: s.enqueued.get("bulk_per_s"), True),
    ("CPU µs/job", lambda s: (s.cpu(1) or {}).get("total"), False),
]


def best_peers(systems: list[System]) -> dict[str, tuple[System, float]]:
    """For each metric, the best peer and its figure."""
    out: dict[str, tuple[System, float]] = {}
    for name, get, more in METRICS:
        values = [(s, v) for s in systems if s.peer and (v := get(s)) is not None and v > 0]
        if values:
            out[name] = (max if more else min)(values, key=lambda sv: sv[1])
    return out


def tables(systems: list[System]) -> list[tuple[str, list[list[str]]]]:
    """The tables: the figures, their ratios to the best peer, CPU per process."""
    best = best_peers(systems)
    main = [
        [
            "system",
            "drain 1 worker jobs/s",
            "drain 2 workers jobs/s",
            "startup s",
            "p50 ms",
            "p99 ms",
            "enqueue one/s",
            "enqueue bulk/s (API)",
            "CPU µs/job",
        ]
    ]
    for s in systems:
        if s.note and not s.runs:
            main.append([s.label, s.note, *["-"] * 7])
            continue
        startups = [r["startup_s"] for r in s.drains(1)]
        cpu = s.cpu(1)
        bulk = s.enqueued.get("bulk_per_s")
        main.append(
            [
                s.label + (f" ({s.note})" if s.note else ""),
                rate_cell(s, 1),
                rate_cell(s, 2),
                f"{statistics.median(startups):.2f}" if startups else "-",
                ms(s.p(0.5)),
                ms(s.p(0.99)),
                per_s(s.enqueued.get("one_per_s")),
                f"{bulk:,.0f} ({s.bulk_api})" if bulk else "-",
                f"{cpu['total']:,.0f}" if cpu else "-",
            ]
        )
    ratios = [["system"] + [name for name, _, _ in METRICS]]
    for s in systems:
        row = [s.label]
        for name, get, _more in METRICS:
            value = get(s)
            if name not in best or value is None or value <= 0:
                row.append("-")
            else:
                row.append(f"{value / best[name][1]:.2f}x")
        ratios.append(row)
    ratios.append(["best peer"] + [best[n][0].key if n in best else "-" for n, _, _ in METRICS])
    procs = [["system, workers", "engine", "worker 1", "worker 2", "valkey", "total", "startup ms"]]
    for s in systems:
        for workers in sorted(s.runs):
            cpu = s.cpu(s.column(workers)) if s.drains(s.column(workers)) else None
            if cpu is None:
                continue
            startup = [
                1e3 * sum(processes(r["cpu_startup"]).values())
                for r in s.runs[workers]
                if r.get("cpu_startup")
            ]
            procs.append(
                [
                    f"{s.label}, {workers} worker(s)" if workers else f"{s.label}, engine alone",
                    *[
                        f"{cpu[k]:,.0f}" if k in cpu else "-"
                        for k in ("engine", "worker 1", "worker 2", "valkey", "total")
                    ],
                    f"{statistics.median(startup):,.0f}" if startup else "-",
                ]
            )
    ratio_title = (
        "Ratio to the best peer in each column (>1 is more: good for rates, bad for ms and CPU)"
    )
    procs_title = (
        "CPU µs per job by process, first result to last (startup ms: CPU of all "
        "processes before the first result)"
    )
    # With no peer measured (--only heroagent) a table of ratios would be all dashes.
    return [("", main)] + ([(ratio_title, ratios)] if best else []) + [(procs_title, procs)]


def render(rows: list[list[str]], markdown: bool = False) -> str:
    """A table as aligned text, or as a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


NOTES = [
    "Drain: jobs/s from the first result to the last; startup s is starting the worker "
    "processes to the first result, apart from it.",
    "HeroAgent counts a job when its end is durable in OurDB, and after each drain checks"
    " that every job's OurDB history is new, active, done; peers count when Redis has it.",
    "CPU: utime+stime from /proc of the engine (the bench process: it owns OurDB, and "
    "counts the bus events), each worker process with its children, and valkey-server.",
]


def print_table(systems: list[System], rss: dict[str, float] | None) -> None:
    """The tables, the notes and the verdicts."""
    for title, rows in tables(systems):
        if title:
            print(title)
        print(render(rows))
        print()
    for note in NOTES:
        print(note)
    verdicts(systems, rss)


def verdicts(systems: list[System], rss: dict[str, float] | None) -> None:
    """The issues' targets, each met or missed, with the figures.

    The drains and enqueue rates judged are those of the first system: HeroAgent with
    `heroagent worker` processes, as the peers run their own workers.
    """
    best = best_peers(systems)
    first = systems[0] if systems and not systems[0].peer else None
    if first is None:
        return

    def verdict(what: str, ours: float | None, target: float, form: str, more: bool) -> None:
        if ours is None or not target:
            return
        mark = "met" if (ours >= target if more else ours <= target) else "MISSED"
        sign = ">=" if more else "<="
        print(f"target {what} {sign} {form.format(target)}: {mark}, {form.format(ours)}")

    for workers, name in ((1, "drain 1 worker"), (2, "drain 2 workers")):
        if name in best:
            peer, theirs = best[name]
            what = f"{name} (best peer: {peer.label})"
            verdict(what, first.median_rate(workers), theirs, RATE, True)
    one, two = first.median_rate(1), first.median_rate(2)
    if one and two:
        verdict("2 workers / 1 worker", two / one, TARGET_SCALE, "{:.2f}x", True)
        for line in scale_ceiling(one, first.cpu(1), first.cpu(2), os.cpu_count() or 1):
            print(f"   {line}")
    if first.samples and "p50" in best:
        peer, theirs = best["p50"]
        ours = first.p(0.5)
        what = f"idle p50 (best peer: {peer.label})"
        verdict(what, None if ours is None else 1000 * ours, 1000 * theirs, "{:.1f} ms", False)
    got = first.enqueued
    bulk_target = max(TARGET_BULK_PER_S, best["enqueue bulk"][1] if "enqueue bulk" in best else 0)
    for key, what, target in (
        ("one_per_s", "EngineAPI.submit one call at a time", TARGET_ONE_PER_S),
        ("bulk_per_s", "Client.submit_many (and the best peer's bulk)", bulk_target),
        ("submit_per_s", f"{jobs_hero.CALLERS} concurrent AsyncClient.submit", TARGET_ONE_PER_S),
    ):
        verdict(what, got.get(key), target, RATE, True)
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


def scale_ceiling(
    one: float, cpu_one: dict[str, float] | None, cpu_two: dict[str, float] | None, cores: int
) -> list[str]:
    """What the CPU profile lets two workers reach, on this machine's cores and on four.

    Every process of a drain (the engine, the workers, valkey-server) shares the cores,
    so `cores` seconds of CPU per second bound the rate at cores / (CPU per job); the
    engine's work runs mostly under one lock (its interpreter's), so its own CPU per job
    bounds the rate at one core / (engine CPU per job) however many cores there are.
    """
    if not cpu_one or not cpu_two or "engine" not in cpu_two:
        return []
    busy = one * cpu_one["total"] / 1e6

    def ceiling(n: int) -> float:
        return min(n * 1e6 / cpu_two["total"], 1e6 / cpu_two["engine"])

    here, four = ceiling(cores), ceiling(4)
    return [
        f"CPU: 1 worker drained at {one:,.0f}/s using {cpu_one['total']:.0f} µs of CPU per "
        f"job, {busy:.2f} of {cores} cores busy;",
        f"with 2 workers a job costs {cpu_two['total']:.0f} µs (engine "
        f"{cpu_two['engine']:.0f}): at most {here:,.0f}/s on {cores} cores, "
        f"{here / one:.2f}x of 1 worker; on 4 cores {four:,.0f}/s, {four / one:.2f}x "
        f"(the engine's {cpu_two['engine']:.0f} µs on its one core "
        f"{'is' if four == 1e6 / cpu_two['engine'] else 'is not'} the bound).",
    ]


def run_profile(plan: Plan, server: Valkey, work: Path, slots: int) -> profile.Result | None:
    """The extra profiled drain, with one `heroagent worker`."""
    if not plan.profile_jobs:
        return None
    server.flushall()
    return profile.profile(server.url, work / "profile", plan.profile_jobs, slots, 1)


def profile_scale(systems: list[System]) -> dict[str, float] | None:
    """The engine's and the worker's CPU µs/job in the unprofiled 1-worker drains."""
    cpu = systems[0].cpu(1) if systems and not systems[0].peer else None
    return {"engine": cpu["engine"], "worker": cpu["worker 1"]} if cpu else None


def print_profile(result: profile.Result, systems: list[System]) -> None:
    """The profile's buckets, scaled to the CPU the 1-worker drains used per job."""
    print("Where HeroAgent's CPU goes: a separate drain, 1 worker, under cProfile")
    print("(python -m bench.profile; one process's own time per bucket)")
    profile.print_profile(result, profile_scale(systems))


def rewrite_readme(
    systems: list[System],
    plan: Plan,
    quick: bool,
    load_before: str,
    readme: Path = README,
    prof: profile.Result | None = None,
) -> None:
    """Replace the marked block of README.md with this run's tables."""
    smoke = (
        "**Smoke run (`--quick`): too few jobs to mean anything; `make bench-readme` on a "
        "quiet machine replaces it.** "
        if quick
        else ""
    )
    lines = [
        f"{smoke}`python -m bench.jobs{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}: {plan.jobs:,} jobs per drain, "
        f"{plan.runs} run(s) (median [min-max]), {plan.samples} latency samples, "
        f"{plan.enqueue:,} jobs per enqueue figure. Machine: {machine()}; load average "
        f"{load_before} at the start, {load_average()} at the end.",
        "Only ratios within one run compare: the absolute figures move with the machine "
        "and its load.",
        "",
    ]
    for title, rows in tables(systems):
        if title:
            lines += [title + ":", ""]
        lines += [render(rows, markdown=True), ""]
    if prof is not None:
        lines += [
            f"Where HeroAgent's CPU goes ({prof.n:,} jobs, 1 worker, under cProfile; "
            "µs/job under the profiler, its share, and the share of the unprofiled "
            "CPU per job):",
            "",
            render(profile.rows(prof, profile_scale(systems)), markdown=True),
            "",
        ]
    lines += [f"- {note}" for note in NOTES]
    rewrite_block("jobs", lines, readme)


def main(argv: list[str] | None = None) -> int:
    """Measure the chosen systems and print the tables."""
    parser = script_parser("bench.jobs", __doc__)
    parser.add_argument("--quick", action="store_true", help="1 run, 500 jobs, 20 samples")
    names = ["heroagent"] + [p.key for p in PEERS]
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join(names)}")
    parser.add_argument("--jobs", type=int, help="jobs per drain run")
    parser.add_argument("--runs", type=int, help="drain runs per system")
    parser.add_argument("--samples", type=int, help="latency samples per system")
    parser.add_argument("--rss-jobs", type=int, help="jobs in the history for RSS (0: skip)")
    parser.add_argument("--enqueue", type=int, help="jobs per enqueue figure")
    parser.add_argument("--profile-jobs", type=int, help="jobs in the profiled drain (0: skip)")
    parser.add_argument("--slots", type=int, default=SLOTS, help="job slots per HeroAgent worker")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's bench block")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(
        jobs=args.jobs or base.jobs,
        runs=args.runs or base.runs,
        samples=args.samples or base.samples,
        rss_jobs=base.rss_jobs if args.rss_jobs is None else args.rss_jobs,
        enqueue=args.enqueue or base.enqueue,
        profile_jobs=base.profile_jobs if args.profile_jobs is None else args.profile_jobs,
    )
    chosen = set(args.only.split(",")) if args.only else set(names)
    if unknown := chosen - set(names):
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    hero = "heroagent" in chosen
    systems = hero_systems(args.slots) if hero else []
    for peer in PEERS:
        if peer.key in chosen:
            system = peer_system(peer)
            # Venvs and the npm folder are built before anything is timed.
            system.note = install(peer)
            systems.append(system)
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="jobs-", dir=RESULTS))
    server = start_valkey(work / "valkey")
    load_before = load_average()
    print(
        f"   {plan.jobs:,} jobs x {plan.runs} runs, {plan.samples} latency samples, "
        f"valkey on {server.url}; {machine()}, load average {load_before}",
        flush=True,
    )
    started = time.monotonic()
    try:
        measure(systems, plan, server, work)
        rss = measure_rss(plan, server, work) if hero and plan.rss_jobs else None
        prof = run_profile(plan, server, work, args.slots) if hero else None
    finally:
        server.stop()
    print_table(systems, rss)
    if prof is not None:
        print()
        print_profile(prof, systems)
    print(f"   ({time.monotonic() - started:.0f} s; load average at the end {load_average()})")
    if args.json:
        args.json.write_text(json.dumps(summary(systems, rss, plan, prof), indent=2))
    if args.readme:
        rewrite_readme(systems, plan, args.quick, load_before, prof=prof)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def summary(
    systems: list[System],
    rss: dict[str, float] | None,
    plan: Plan,
    prof: profile.Result | None = None,
) -> dict[str, Any]:
    """Everything measured, for --json."""
    return {
        "plan": plan.__dict__,
        "machine": machine(),
        "systems": [
            {
                "label": s.label,
                "note": s.note,
                "runs": {str(w): r for w, r in s.runs.items()},
                "latency_s": s.samples,
                "enqueue": s.enqueued,
                "cpu_us_per_job": s.cpu(1),
            }
            for s in systems
        ],
        "rss": rss,
        "profile": None
        if prof is None
        else {
            "jobs": prof.n,
            "engine_s": prof.engine,
            "worker_s": prof.worker,
            "engine_cpu_s": prof.engine_cpu,
            "worker_cpu_s": prof.worker_cpu,
        },
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
