"""Driver shared by the peer scripts: drain and idle latency, one JSON line on stdout.

Each peer script runs under the bench's venv for that library (never HeroAgent's), so
this module imports nothing but the standard library. A script defines a `Peer` and
calls `main(Peer)`; the worker it names is started as a subprocess with this folder on
PYTHONPATH, so the worker imports the same module the jobs were queued from.

    BENCH_REDIS_URL=redis://... python rq_peer.py drain --n 20000 --workers 2
    BENCH_REDIS_URL=redis://... python rq_peer.py latency --samples 200
    BENCH_REDIS_URL=redis://... python rq_peer.py enqueue --n 2000

The URL comes from the environment because the worker process needs it at import time.
With BENCH_VALKEY_PID set, a drain also reports the CPU seconds of the worker processes
(with their children) and of the server between the first and the last result, read
from /proc; the bench's own HeroAgent side imports the same readers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Protocol, TypeVar

HERE = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
POLL_SECONDS = 0.002  # how often the driver looks for results while draining
VERIFY_CHUNK = 1_000
DRAIN_TIMEOUT = 900.0
T = TypeVar("T")


class Peer(Protocol):
    """What each library's script provides."""

    def __init__(self, url: str) -> None: ...

    def enqueue_many(self, n: int) -> list[Any]:
        """Queue `n` no-op jobs; a handle per job."""

    def done_many(self, handles: list[Any]) -> list[bool]:
        """Whether each job's result is stored (one pipelined round trip)."""

    def enqueue_one(self) -> Any:
        """Queue one no-op job; its handle."""

    def wait_one(self, handle: Any) -> None:
        """Block until the job's result is in hand (the library's own way to wait)."""

    def worker_argv(self) -> list[str]:
        """The command that starts one worker process."""

    # Optional: `enqueue_bulk(n) -> list[Any]`, only where the library has a batch API.


class AsyncPeer:
    """A peer whose client is asyncio: its own event loop, which the driver's calls run."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.run(self.connect(url))

    async def connect(self, url: str) -> None:
        """Open the library's client on the loop the peer's calls will run on."""

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)


def proc_cpu(pid: int, reaped: bool = True) -> float:
    """CPU seconds (user + system) of a process (and its reaped children); 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name may hold spaces and parentheses: fields start after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + (cutime + cstime if reaped else 0)) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """The pids of a process's living descendants (prefork pools, taskiq's children)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants, living or reaped."""
    return proc_cpu(pid) + sum(proc_cpu(child) for child in descendants(pid))


class CpuMeter:
    """CPU seconds of some process trees and the server, read at marks during a drain."""

    def __init__(self, workers: list[int], server: int | None, alone: tuple[int, ...] = ()) -> None:
        self.workers = workers
        self.server = server
        # Processes counted without their children (the bench process is the parent of
        # the workers and the server, which are counted apart).
        self.alone = list(alone)
        self.marks: list[tuple[list[float], float]] = []

    def mark(self) -> None:
        """Read every process now."""
        server = proc_cpu(self.server) if self.server else 0.0
        own = [proc_cpu(pid, reaped=False) for pid in self.alone]
        self.marks.append((own + [tree_cpu(pid) for pid in self.workers], server))

    def between(self, a: int, b: int) -> dict[str, Any]:
        """CPU seconds each worker tree and the server used from mark a to mark b."""
        (wa, sa), (wb, sb) = self.marks[a], self.marks[b]
        return {"workers": [y - x for x, y in zip(wa, wb, strict=True)], "server": sb - sa}


def server_pid() -> int | None:
    """The valkey-server pid the bench passed, if any."""
    value = os.environ.get("BENCH_VALKEY_PID", "")
    return int(value) if value.isdigit() else None


def venv_bin(name: str) -> str:
    """A console script of the venv that runs this script."""
    return str(Path(sys.executable).parent / name)


def _die_with_parent() -> None:
    """In the worker, before exec: get SIGKILL when the driver dies (Linux prctl)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def start_worker(peer: Peer, log: Path) -> subprocess.Popen[bytes]:
    """Start the library's worker process, its output to `log`."""
    env = os.environ | {"PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            peer.worker_argv(),
            cwd=HERE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group (prefork libraries have children), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    # Children that outlived their parent (killpg by the group id, which is the pid).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def track(
    peer: Peer,
    handles: list[Any],
    procs: list[subprocess.Popen[bytes]],
    on_first: Any = None,
) -> tuple[float, float]:
    """perf_counter times of the first and the last stored result.

    Jobs finish roughly in queue order, so the driver probes one handle at a time,
    galloping ahead while results are there, instead of asking about every job on each
    poll (which would load the shared server). Once the last handle is done, one pass
    checks them all, and stragglers are waited for.
    """
    n = len(handles)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    first = 0.0
    last = 0.0
    i, step = 0, 1
    while i < n:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError(f"a worker exited after {i} of {n}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only about {i} of {n} results after {DRAIN_TIMEOUT} s")
        j = min(i + step, n) - 1
        if peer.done_many([handles[j]])[0]:
            now = time.perf_counter()
            if not first and on_first is not None:
                on_first()
            first = first or now
            last = now
            i, step = j + 1, step * 2
        else:
            step = max(1, step // 2)
            time.sleep(POLL_SECONDS)
    missing = []
    for start in range(0, n, VERIFY_CHUNK):
        chunk = handles[start : start + VERIFY_CHUNK]
        missing += [h for h, done in zip(chunk, peer.done_many(chunk), strict=True) if not done]
    while missing:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"{len(missing)} of {n} results never appeared")
        time.sleep(POLL_SECONDS)
        done = peer.done_many(missing)
        if any(done):
            last = time.perf_counter()
        missing = [h for h, d in zip(missing, done, strict=True) if not d]
    return first, last


def drain(peer: Peer, n: int, log: Path, workers: int = 1) -> dict[str, Any]:
    """Queue `n` jobs, then time `workers` worker processes from their start to the last result.

    CPU is read at the first result and at the last (before the workers stop), so the
    figure is the steady cost per job, not the interpreter's start-up.
    """
    start = time.perf_counter()
    handles = peer.enqueue_many(n)
    enqueue_s = time.perf_counter() - start
    start = time.perf_counter()
    procs = [start_worker(peer, log) for _ in range(workers)]
    meter = CpuMeter([p.pid for p in procs], server_pid())
    meter.mark()
    try:
        first, last = track(peer, handles, procs, meter.mark)
        meter.mark()
    finally:
        for proc in procs:
            stop_worker(proc)
    return {
        "n": n,
        "workers": workers,
        "enqueue_s": enqueue_s,
        "startup_s": first - start,
        "total_s": last - start,
        # Results seen between the two CPU marks: all but the first.
        "cpu_jobs": n - 1,
        "cpu": meter.between(1, 2),
        "cpu_startup": meter.between(0, 1),
    }


def enqueue(peer: Peer, n: int) -> dict[str, Any]:
    """Jobs/s queued one call at a time, and with the library's batch API where it has one."""
    start = time.perf_counter()
    for _ in range(n):
        peer.enqueue_one()
    one = n / (time.perf_counter() - start)
    bulk = None
    batch = getattr(peer, "enqueue_bulk", None)
    if batch is not None:
        start = time.perf_counter()
        batch(n)
        bulk = n / (time.perf_counter() - start)
    return {"n": n, "one_per_s": one, "bulk_per_s": bulk}


def latency(peer: Peer, samples: int, log: Path, seed: int) -> dict[str, Any]:
    """Enqueue → result in hand, one job at a time, with random idle gaps."""
    rng = random.Random(seed)
    proc = start_worker(peer, log)
    try:
        times = []
        for i in range(samples + 3):  # the first three wait out start-up and warm up
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}")
            time.sleep(rng.uniform(0.05, 0.55))
            start = time.perf_counter()
            peer.wait_one(peer.enqueue_one())
            if i >= 3:
                times.append(time.perf_counter() - start)
    finally:
        stop_worker(proc)
    return {"samples": times}


def main(factory: type[Peer]) -> None:
    """Parse the command line, run one measurement, print its JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["drain", "latency", "enqueue"])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--log", type=Path, default=Path(os.devnull))
    args = parser.parse_args()
    peer = factory(os.environ["BENCH_REDIS_URL"])
    if args.mode == "drain":
        result: dict[str, Any] = drain(peer, args.n, args.log, args.workers)
    elif args.mode == "enqueue":
        result = enqueue(peer, args.n)
    else:
        result = latency(peer, args.samples, args.log, args.seed)
    print(json.dumps(result), flush=True)
