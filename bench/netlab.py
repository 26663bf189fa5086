"""Jobs/s with one, two and four worker hosts in the lab: `python -m bench.netlab` (root).

The engine runs on its own host with no slots, so every job crosses the lab's bridge
to a worker host and its outcome crosses back. Two kinds of job:

The single-host figure is a worker on the engine's own host: the others are printed as
ratios to it, and two hosts as a ratio to one.

- `sleep`: each job waits 20 ms, so throughput is bounded by slots; a second host adds
  its slots and should come close to doubling it.
- `noop`: jobs that do nothing, so throughput is bounded by the engine (its valkey,
  its OurDB writes) and by the cores the lab's hosts share on one machine: the ratio
  varies from run to run, and on a real network a second machine would bring cores of
  its own.

Only ratios are printed as results: absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.netlab.hosts import LabEngine, LabWorker
from tests.netlab.lab import Lab

WORKLOADS = {"sleep": "!!fake.sleep seconds:0.02\n", "noop": "!!fake.return_success\n"}


async def _rate(engine: LabEngine, params: str, count: int) -> float:
    async with engine.client() as client:
        # A warm-up job: connections made and the workers polling before the clock runs.
        await client.wait((await client.submit(params)).job_id, timeout=30)
        started = time.monotonic()
        ids: list[int] = []
        for first in range(0, count, 1000):
            batch = await client.submit_many([params] * min(1000, count - first))
            ids.extend(job.job_id for job in batch)
        await client.wait_many(ids, timeout=300)
        return count / (time.monotonic() - started)


# The placements measured: the worker on the engine's own host (the single-host figure,
# no network between them), then one, two and four worker hosts across the lab's bridge.
PLACEMENTS = {0: ("eng",), 1: ("w1",), 2: ("w1", "w2"), 4: ("w1", "w2", "w3", "w4")}
# The two hosts beyond the lab's usual ones, at 10.77.0.<number>.
EXTRA_HOSTS = {"w3": 13, "w4": 14}


def measure(count: int, slots: int) -> dict[str, dict[int, float]]:
    """Jobs/s for each workload by placement (see PLACEMENTS), in a lab of its own."""
    rates: dict[str, dict[int, float]] = {name: {} for name in WORKLOADS}
    with tempfile.TemporaryDirectory(prefix="hal-") as tmp, Lab() as lab:
        root = Path(tmp)
        for tag, number in EXTRA_HOSTS.items():
            if tag not in lab.hosts:
                lab.add_host(tag, number)
        engine = LabEngine(lab["eng"], root / "eng")
        for hosts, tags in PLACEMENTS.items():
            workers = [
                LabWorker(lab[tag], engine.url, root / f"{tag}-{hosts}", lease=10, slots=slots)
                for tag in tags
            ]
            for name, params in WORKLOADS.items():
                rates[name][hosts] = asyncio.run(_rate(engine, params, count))
            for worker in workers:
                worker.host.stop(worker.process)
        lab.stop_processes()
    return rates


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.netlab", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per run (default 1000)")
    parser.add_argument("--slots", type=int, default=5, help="slots per worker host")
    parser.add_argument("--quick", action="store_true", help="300 jobs per run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.netlab needs root (network namespaces); skipped", file=sys.stderr)
        return 0
    count = 300 if args.quick else args.jobs
    rates = measure(count, args.slots)
    print(f"{count} jobs per run, {args.slots} slots per worker host")
    print("jobs/s by worker hosts, over the figure with the worker on the engine's host")
    print(f"{'workload':<10}{'1 host':>10}{'2 hosts':>10}{'4 hosts':>10}{'2 / 1':>8}{'4 / 2':>8}")
    for name, by in rates.items():
        cells = "".join(f"{by[n] / by[0]:>9.2f}x" for n in (1, 2, 4))
        print(f"{name:<10}{cells}{by[2] / by[1]:>7.2f}x{by[4] / by[2]:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
