"""How long `heroagent submit` takes, start to answer: `python -m bench.cli [--quick]`.

A served engine (`heroagent --serve`, its own valkey) takes the submits; each run is a
fresh `heroagent submit FILE --json` process, timed by the wall clock from spawn to
exit, so the figure is what a user waits for a job id. Beside it: a bare interpreter,
and the import floor: one that imports every module the submit path loads that is not
HeroAgent's own (asyncio, hiredis, ...; listed from a real submit), so the table shows
how much of the time is HeroAgent's own code and its round trip.

The children compile this checkout's modules once into a private bytecode cache (as an
installed package has them) even where PYTHONDONTWRITEBYTECODE is set: without it each
run would compile them from source, which no installed `heroagent` does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.launch import free_port, heroagent_argv

SCRIPT = "!!fake.return_success message:cli\n"
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


def measure(runs: int) -> dict[str, list[float]]:
    """Spawn-to-exit times (ms) of a bare interpreter, the import floor, and `submit`."""
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
    bare, floor = (statistics.median(times) for times in list(results.values())[:2])
    width = max(len(name) for name in results) + 2
    print(f"{'what':<{width}}{'p50 ms':>8}{'best ms':>9}{'x bare':>8}{'x floor':>9}")
    for name, times in results.items():
        p50 = statistics.median(times)
        print(
            f"{name:<{width}}{p50:>8.0f}{min(times):>9.0f}{p50 / bare:>7.1f}x{p50 / floor:>8.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
