"""How long `heroagent submit` takes, start to answer: `python -m bench.cli [--quick]`.

A served engine (`heroagent --serve`, its own valkey) takes the submits; each run is a
fresh `heroagent submit FILE --json` process, timed by the wall clock from spawn to
exit, so the figure is what a user waits for a job id. Beside it: a bare interpreter,
and one that only imports what the submit path cannot do without (redis-py's asyncio
client and typer), so the table shows how much of the time is HeroAgent's own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.launch import free_port, heroagent_argv

SCRIPT = "!!fake.return_success message:cli\n"


def _time(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    """Milliseconds from spawn to exit of each of `runs` runs (each must succeed)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, timeout=60, check=False)
        times.append(1000 * (time.perf_counter() - start))
        if done.returncode != 0:
            raise RuntimeError(f"{argv[-3:]}: exit {done.returncode}: {done.stderr.decode()}")
    return times


def _serve(data: Path) -> subprocess.Popen[str]:
    """`heroagent --serve` with only the job system, once it says it is ready."""
    env = {**os.environ, "HEROAGENT_ENABLE_WEBDAV": "false", "HEROAGENT_ENABLE_UI": "false"}
    argv = heroagent_argv(data, "--redis-port", str(free_port()), "--serve")
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "ready" in line:
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError("heroagent --serve did not get ready")


def measure(runs: int) -> dict[str, list[float]]:
    """Spawn-to-exit times (ms) of a bare interpreter, the import floor, and `submit`."""
    env = {**os.environ, "HEROAGENT_CONFIG": os.devnull}
    with tempfile.TemporaryDirectory(prefix="hacli-") as tmp:
        data = Path(tmp) / "data"
        params = Path(tmp) / "job.hero"
        params.write_text(SCRIPT)
        server = _serve(data)
        try:
            submit = heroagent_argv(data, "submit", str(params), "--json")
            _time(submit, 2, env)  # warm the page cache
            return {
                "python -c pass": _time([sys.executable, "-c", "pass"], runs, env),
                "import redis.asyncio, typer": _time(
                    [sys.executable, "-c", "import redis.asyncio, typer"], runs, env
                ),
                "heroagent submit FILE": _time(submit, runs, env),
            }
        finally:
            server.terminate()
            server.wait(30)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 runs instead of 20")
    parser.add_argument("--runs", type=int, default=20)
    args, _ = parser.parse_known_args(argv)
    results = measure(5 if args.quick else args.runs)
    floor = statistics.median(results["import redis.asyncio, typer"])
    print(f"{'what':<30}{'p50 ms':>10}{'best ms':>10}{'over floor':>12}")
    for name, times in results.items():
        p50 = statistics.median(times)
        print(f"{name:<30}{p50:>10.0f}{min(times):>10.0f}{p50 / floor:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
