"""Run every benchmark module: `python -m bench [--quick]`."""

from __future__ import annotations

import importlib
import sys

# Each name is a module bench.<name> with a main(argv) function; add new ones here.
BENCHMARKS = ["ourdb", "heroscript", "rhai", "webdav", "http", "jobs", "tui", "cli"]


def main(argv: list[str]) -> int:
    """Run each benchmark in turn; a failing one fails the run (none is skipped)."""
    status = 0
    for name in BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench.{name}", flush=True)
        status = max(status, int(module.main(argv) or 0))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
