"""HTTP UI speed: listing and submitting jobs over HTTP, beside the same EngineAPI call in-process.

Run with `python -m bench.http` (or `--quick` for a smoke run). The engine (managed
valkey, OurDB, the HTTP UI) runs in this process's event loop with no workers, so the
history holds exactly the jobs the bench created. The HTTP client is a separate process
(one keep-alive connection, one request at a time), so server and client do not share
an interpreter; the in-process numbers are measured while that client is not running.
The target: `GET /api/jobs?limit=50` under 50 ms with 100,000 jobs in history.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.launch import free_port

LIST_PATH = "/api/jobs?limit=50"
SUBMIT_BODY = {"params": "!!fake.return_success message:bench\n", "topic": "bench"}
TARGET_MS = 50.0
BATCH = 1_000


@dataclass
class Plan:
    jobs: int
    requests: int
    runs: int


FULL = Plan(jobs=100_000, requests=1_000, runs=3)
QUICK = Plan(jobs=2_000, requests=100, runs=1)


@dataclass
class Sample:
    """One run of one operation: calls per second and latency percentiles in ms."""

    per_second: float
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Sample:
        ordered = sorted(seconds)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return cls(len(seconds) / sum(seconds), statistics.median(ordered) * 1e3, p99 * 1e3)


def median_sample(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.per_second for s in samples),
        statistics.median(s.p50_ms for s in samples),
        statistics.median(s.p99_ms for s in samples),
    )


# -- the client process ------------------------------------------------------------------


def client(port: int, what: str, count: int) -> None:
    """Run in a child process: `count` sequential requests, print each latency as JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    batch = what == "batch"  # POST /api/jobs/batch of BATCH jobs per request
    body = json.dumps([SUBMIT_BODY] * BATCH if batch else SUBMIT_BODY).encode()
    headers = {"Content-Type": "application/json"}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        if what == "list":
            conn.request("GET", LIST_PATH)
        else:
            conn.request("POST", "/api/jobs/batch" if batch else "/api/jobs", body, headers)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        if response.status not in (200, 201):
            raise SystemExit(f"{what}: HTTP {response.status}")
    print(json.dumps(times))


async def over_http(port: int, what: str, count: int) -> Sample:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.http", "--client", str(port), what, str(count)),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the HTTP client for {what} exited with {process.returncode}")
    return Sample.of(json.loads(out))


# -- the engine side ---------------------------------------------------------------------


async def in_process(api: object, what: str, count: int) -> Sample:
    from core.api import EngineAPI

    assert isinstance(api, EngineAPI)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        if what == "list":
            await api.jobs(limit=50)
        else:
            await api.submit(SUBMIT_BODY["params"], topic=SUBMIT_BODY["topic"])
        times.append(time.perf_counter() - started)
    return Sample.of(times)


async def run(plan: Plan, work: Path) -> dict[str, dict[str, Sample]]:
    from core.api import JobSpec
    from core.config import load_config
    from core.engine import Engine

    flags = {
        "data_dir": str(work / "data"),
        "redis.tcp_port": free_port(),
        "ui.port": free_port(),
        "jobs.worker_count": 0,
    }
    config = load_config(work / "absent.toml", env={}, flags=flags).config
    config = replace(config, enable_webdav=False)
    async with Engine(config) as engine:
        started = time.perf_counter()
        for first in range(0, plan.jobs, 1_000):
            size = min(1_000, plan.jobs - first)
            spec = JobSpec(f"!!fake.return_success message:'job {first}'\n", topic="history")
            await engine.jobs.create_jobs([spec] * size)
        print(f"created {plan.jobs:,} jobs in {time.perf_counter() - started:.1f} s", flush=True)
        api = engine.api
        port = int(engine.services["ui"].address().rstrip("/").rsplit(":", 1)[1])
        results: dict[str, dict[str, list[Sample]]] = {
            op: {"http": [], "in-process": []} for op in ("list", "submit")
        }
        await over_http(port, "list", 20)  # warm up both sides
        await in_process(api, "list", 20)
        for _ in range(plan.runs):
            for op in ("list", "submit"):
                results[op]["http"].append(await over_http(port, op, plan.requests))
                results[op]["in-process"].append(await in_process(api, op, plan.requests))
    return {
        op: {side: median_sample(s) for side, s in sides.items()} for op, sides in results.items()
    }


def report(plan: Plan, results: dict[str, dict[str, Sample]]) -> dict[str, object]:
    names = {"list": f"GET {LIST_PATH}", "submit": "POST /api/jobs (submit)"}
    print(f"HTTP UI bench: {plan.jobs:,} jobs in history, {plan.requests} sequential requests,")
    print(
        f"median of {plan.runs} run(s); Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'operation':<28} {'http/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
        f"  {'in-proc/s':>9} {'p50 ms':>7} {'p99 ms':>7}  ratio"
    )
    for op, sides in results.items():
        h, p = sides["http"], sides["in-process"]
        ratio = h.per_second / p.per_second
        print(
            f"{names[op]:<28} {h.per_second:>8.0f} {h.p50_ms:>7.2f} {h.p99_ms:>7.2f}"
            f"  {p.per_second:>9.0f} {p.p50_ms:>7.2f} {p.p99_ms:>7.2f}  {ratio:.2f}"
        )
    listed = results["list"]["http"]
    verdict = "met" if listed.p50_ms < TARGET_MS else "MISSED"
    print(
        f"target: list under {TARGET_MS:.0f} ms at {plan.jobs:,} jobs:"
        f" p50 {listed.p50_ms:.1f} ms, {verdict} (p99 {listed.p99_ms:.1f} ms)"
    )
    return {
        "plan": asdict(plan),
        "results": {op: {k: asdict(v) for k, v in sides.items()} for op, sides in results.items()},
        "ratios": {
            op: sides["http"].per_second / sides["in-process"].per_second
            for op, sides in results.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 jobs and one run (smoke)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument(
        "--client", nargs=3, metavar=("PORT", "WHAT", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.client:
        client(int(args.client[0]), args.client[1], int(args.client[2]))
        return 0
    plan = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="ha-bench-http-") as work:
        results = asyncio.run(run(plan, Path(work)))
    summary = report(plan, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
