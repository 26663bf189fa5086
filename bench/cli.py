"""How long `heroagent submit` takes, start to answer: `python -m bench.cli [--quick]`.

A served engine (`heroagent --serve`, its own valkey) takes the submits; each run is a
fresh `heroagent submit FILE --json` process, timed by the wall clock from spawn to
exit, so the figure is what a user waits for a job id. Beside it: a bare interpreter,
and the import floor: one that imports every module the submit path loads that is not
HeroAgent's own (hiredis, socket, json, ...; listed from a real submit), so the table
shows how much of the time is HeroAgent's own code and its round trip. The last line
holds the submit's p50 against its target (TARGET_MS, issue 15: under 150 ms), and
beside each row is the CPU it took, a figure a busy machine hardly moves.

The children compile this checkout's modules once into a private bytecode cache (as an
installed package has them) even where PYTHONDONTWRITEBYTECODE is set: without it each
run would compile them from source, which no installed `heroagent` does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from bench.launch import free_port, heroagent_argv

SCRIPT = "!!fake.return_success message:cli\n"
# `heroagent submit` should start and answer within this (a quiet machine's p50).
TARGET_MS = 150
OWN = ("core", "heroagent", "heroagent_tui", "bench", "__main__")
# Run in the child after its submit: the modules it loaded that are not HeroAgent's.
REPORT_MODULES = (
    "import atexit, json, sys\n"
    "own = {own!r}\n"
    "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules "
    "if m.split('.')[0] not in own))))\n"
    "sys.argv = ['heroagent', *{argv!r}]\n"
    "from heroagent_tui.cli import main\n"
    "main()\n"
)

# By import_module, not an import statement: some module names are no identifiers.
_IMPORT_ALL = "import importlib\nfor name in {!r}:\n    importlib.import_module(name)\n"


class Runs(NamedTuple):
    """Each run's milliseconds from spawn to exit, and the CPU (user + system) it used."""

    wall: list[float]
    cpu: list[float]


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], runs: int, env: dict[str, str]) -> Runs:
    """`runs` runs of `argv` (each must succeed), timed.

    The CPU is counted too: on a busy machine the wall clock says as much about the
    other work as about this one; the CPU a run takes hardly changes with the load.
    """
    found = Runs([], [])
    for _ in range(runs):
        cpu, start = _cpu_of_children(), time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, timeout=60, check=False)
        found.wall.append(1000 * (time.perf_counter() - start))
        found.cpu.append(1000 * (_cpu_of_children() - cpu))
        if done.returncode != 0:
            raise RuntimeError(f"{argv[-3:]}: exit {done.returncode}: {done.stderr.decode()}")
    return found


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


def floor_modules(submit: list[str], env: dict[str, str]) -> list[str]:
    """What a real `heroagent submit` imports beyond HeroAgent's own modules."""
    argv = submit[submit.index("heroagent_tui") + 1 :]
    code = REPORT_MODULES.format(own=OWN, argv=argv)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"submit for the module list: exit {done.returncode}: {done.stderr}")
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def measure(runs: int) -> dict[str, Runs]:
    """Spawn-to-exit times and CPU (ms) of a bare interpreter, the import floor, `submit`."""
    with tempfile.TemporaryDirectory(prefix="hacli-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"HEROAGENT_CONFIG": os.devnull, "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pyc")}
        data = Path(tmp) / "data"
        params = Path(tmp) / "job.hero"
        params.write_text(SCRIPT)
        server = _serve(data)
        try:
            submit = heroagent_argv(data, "submit", str(params), "--json")
            _time(submit, 2, env)  # compile the bytecode, warm the page cache
            floor = floor_modules(submit, env)
            tops = sorted({m.split(".")[0] for m in floor if not m.startswith("_")})
            named = [m for m in ("asyncio", "hiredis", "typer", "redis") if m in tops]
            label = f"import {', '.join(named)}, ... ({len(floor)} modules)"
            return {
                "python -c pass": _time([sys.executable, "-c", "pass"], runs, env),
                label: _time([sys.executable, "-c", _IMPORT_ALL.format(floor)], runs, env),
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
    bare, floor = (statistics.median(runs.wall) for runs in list(results.values())[:2])
    width = max(len(name) for name in results) + 2
    print(
        f"{'what':<{width}}{'p50 ms':>8}{'best ms':>9}{'x bare':>8}{'x floor':>9}{'cpu p50 ms':>12}"
    )
    for name, runs in results.items():
        p50 = statistics.median(runs.wall)
        print(
            f"{name:<{width}}{p50:>8.0f}{min(runs.wall):>9.0f}{p50 / bare:>7.1f}x"
            f"{p50 / floor:>8.2f}x{statistics.median(runs.cpu):>12.0f}"
        )
    submit = list(results.values())[-1]
    p50 = statistics.median(submit.wall)
    verdict = "met" if p50 < TARGET_MS else "missed"
    print(
        f"target: heroagent submit p50 under {TARGET_MS} ms: {verdict} ({p50:.0f} ms, "
        f"CPU {statistics.median(submit.cpu):.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
