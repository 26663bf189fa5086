"""WebDAV throughput: PUT and GET of many small files and one large file, beside a static server.

Run with `python -m bench.webdav` (or `--quick` for a smoke run). The WebDAV side is the
real product: `heroagent --serve` with only WebDAV enabled, in its own process. The
peer serves the same folder with `python -m http.server` — a weak peer (single
process, HTTP/1.0, no sendfile), so the ratio flatters WebDAV; it is labelled as
such in the output. The client is one Python thread with a keep-alive connection
where the server allows one; both servers face the same client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.launch import free_port, heroagent_argv, stop_process

SMALL_SIZE = 4096
CHUNK = 1 << 20


@dataclass
class Plan:
    small_files: int
    big_bytes: int
    runs: int


FULL = Plan(small_files=1000, big_bytes=100 * 1000 * 1000, runs=3)
QUICK = Plan(small_files=50, big_bytes=5 * 1000 * 1000, runs=1)


@dataclass
class Measure:
    name: str
    unit: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def wait_until_serving(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s")


@contextmanager
def process(
    args: list[str], port: int, what: str, env: dict[str, str], log: Path
) -> Iterator[None]:
    # Output goes to a file: http.server logs every request, and an unread pipe would
    # fill up and stall it mid-benchmark.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_until_serving(port, proc, what)
            yield
        except Exception:
            sys.stderr.write(f"{what} output:\n{log.read_text(errors='replace')[-4000:]}\n")
            raise
        finally:
            stop_process(proc, 10)


def heroagent_webdav(data: Path, port: int) -> list[str]:
    return heroagent_argv(
        data,
        "--redis-port",
        str(free_port()),
        "--webdav-port",
        str(port),
        "--log-level",
        "warning",
        "--serve",
    )


# Only WebDAV: the bench measures file serving, not Redis or the UI.
WEBDAV_ENV = {
    "HEROAGENT_ENABLE_REDIS": "false",
    "HEROAGENT_ENABLE_UI": "false",
    "HEROAGENT_ENABLE_JOBS": "false",
}


class Client:
    """One keep-alive connection that reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def put(self, path: str, body: bytes) -> None:
        self.conn.request("PUT", path, body=body)
        response = self.conn.getresponse()
        response.read()
        if response.status not in (200, 201, 204):
            raise RuntimeError(f"PUT {path}: {response.status}")

    def get(self, path: str) -> int:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        size = 0
        while chunk := response.read(CHUNK):
            size += len(chunk)
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        return size

    def close(self) -> None:
        self.conn.close()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(plan: Plan, work: Path) -> dict[str, Measure]:
    data = work / "data"
    root = data / "webdav"
    root.mkdir(parents=True)
    dav_port, peer_port = free_port(), free_port()
    small = [os.urandom(SMALL_SIZE) for _ in range(plan.small_files)]
    big = os.urandom(plan.big_bytes)
    names = [f"/small/f{i:05d}.bin" for i in range(plan.small_files)]
    mb = plan.big_bytes / 1e6
    results = {
        key: Measure(key, unit, [])
        for key, unit in (
            ("webdav PUT small", "files/s"),
            ("webdav GET small", "files/s"),
            ("static GET small", "files/s"),
            ("webdav PUT big", "MB/s"),
            ("webdav GET big", "MB/s"),
            ("static GET big", "MB/s"),
        )
    }
    peer = [sys.executable, "-m", "http.server", str(peer_port), "--bind", "127.0.0.1"]
    peer += ["--directory", str(root)]
    dav_args = heroagent_webdav(data, dav_port)
    with (
        process(dav_args, dav_port, "heroagent --serve", WEBDAV_ENV, work / "webdav.log"),
        process(peer, peer_port, "python -m http.server", {}, work / "static.log"),
    ):
        dav, static = Client(dav_port), Client(peer_port)
        dav.conn.request("MKCOL", "/small/")
        dav.conn.getresponse().read()
        for _ in range(plan.runs):
            seconds = timed(lambda: [dav.put(n, b) for n, b in zip(names, small, strict=True)])
            results["webdav PUT small"].runs.append(plan.small_files / seconds)
            seconds = timed(lambda: [dav.get(n) for n in names])
            results["webdav GET small"].runs.append(plan.small_files / seconds)
            seconds = timed(lambda: [static.get(n) for n in names])
            results["static GET small"].runs.append(plan.small_files / seconds)
            results["webdav PUT big"].runs.append(mb / timed(lambda: dav.put("/big.bin", big)))
            results["webdav GET big"].runs.append(mb / timed(lambda: dav.get("/big.bin")))
            results["static GET big"].runs.append(mb / timed(lambda: static.get("/big.bin")))
        dav.close()
        static.close()
    if (root / "big.bin").stat().st_size != plan.big_bytes:
        raise RuntimeError("the big file did not arrive whole")
    return results


def report(plan: Plan, results: dict[str, Measure]) -> dict[str, object]:
    print(f"WebDAV bench: {plan.small_files} files of {SMALL_SIZE} B, one of {plan.big_bytes:,} B,")
    print(
        f"{plan.runs} run(s), median [min-max]; {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print("peer 'static' = python -m http.server (a weak peer: HTTP/1.0, one process)\n")
    for measure in results.values():
        low, high = min(measure.runs), max(measure.runs)
        print(
            f"  {measure.name:<18} {measure.median:>9.1f} {measure.unit:<8} [{low:.1f}-{high:.1f}]"
        )
    ratios = {
        "GET small, webdav/static": results["webdav GET small"].median
        / results["static GET small"].median,
        "GET big, webdav/static": results["webdav GET big"].median
        / results["static GET big"].median,
    }
    print()
    for name, value in ratios.items():
        print(f"  ratio {name}: {value:.2f}")
    return {
        "plan": asdict(plan),
        "results": {k: asdict(v) for k, v in results.items()},
        "ratios": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webdav", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and one run (smoke)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="ha-bench-") as work:
        results = run(plan, Path(work))
    summary = report(plan, results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
