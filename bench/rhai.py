"""Speed of the embedded Rhai interpreter beside CPython running the same algorithms.

Run ``python -m bench.rhai`` (``--quick`` for a smoke run). Each workload prints the
operations per second of Rhai and of CPython, and how many times slower Rhai is. The
target is within 30x of CPython for a tree-walking interpreter.
"""

from __future__ import annotations

import argparse
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from bench.timing import best
from core.rhai import Engine, Limits

TARGET_RATIO = 30.0


@dataclass(frozen=True)
class Workload:
    """One algorithm written twice: Rhai source and a Python function; ``ops`` per run."""

    name: str
    unit: str
    ops: int
    rhai: str
    python: Callable[[], object]


def _fib(n: int) -> int:
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)


def _calls(n: int) -> int:
    return 1 if n < 2 else 1 + _calls(n - 1) + _calls(n - 2)


def _loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def _build(n: int) -> int:
    s = ""
    for i in range(n):
        s += str(i % 10)
    return len(s)


def _sort(data: list[int]) -> int:
    copy = list(data)
    copy.sort()
    return copy[0]


def workloads(quick: bool) -> list[Workload]:
    """The four workloads, smaller with ``quick``."""
    fib_n = 18 if quick else 25
    loop_n = 100_000 if quick else 1_000_000
    build_n = 20_000 if quick else 200_000
    sort_n = 20_000 if quick else 200_000
    rng = random.Random(7)
    data = [rng.randrange(1_000_000) for _ in range(sort_n)]
    literal = "[" + ", ".join(map(str, data)) + "]"
    return [
        Workload(
            f"fib({fib_n}) recursive", "calls", _calls(fib_n),
            f"fn fib(n) {{ if n < 2 {{ n }} else {{ fib(n - 1) + fib(n - 2) }} }} fib({fib_n})",
            lambda: _fib(fib_n),
        ),
        Workload(
            f"loop of {loop_n:,} additions", "additions", loop_n,
            f"let total = 0; for i in 0..{loop_n} {{ total += i; }} total",
            lambda: _loop(loop_n),
        ),
        Workload(
            f"string building, {build_n:,} appends", "appends", build_n,
            f'let s = ""; for i in 0..{build_n} {{ s += `${{i % 10}}`; }} s.len',
            lambda: _build(build_n),
        ),
        Workload(
            f"array sort of {sort_n:,} ints", "elements", sort_n,
            f"let a = {literal}; a.sort(); a[0]",
            lambda: _sort(data),
        ),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run every workload and print Rhai and CPython operations per second."""
    parser = argparse.ArgumentParser(prog="python -m bench.rhai", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller, single run")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else 3
    engine = Engine(Limits(max_operations=0, max_string_size=0, max_array_size=0))
    worst = 0.0
    print(f"{'workload':40s} {'rhai ops/s':>14s} {'cpython ops/s':>14s} {'ratio':>7s}")
    for w in workloads(args.quick):
        ast = engine.compile(w.rhai)
        expected = w.python()
        got = engine.run_ast(ast)
        if got != expected:
            print(f"{w.name}: Rhai returned {got!r}, CPython {expected!r}")
            return 1
        rhai = best(runs, functools.partial(engine.run_ast, ast))
        py = best(runs, w.python)
        ratio = rhai / py
        worst = max(worst, ratio)
        print(f"{w.name:40s} {w.ops / rhai:>14,.0f} {w.ops / py:>14,.0f} {ratio:>6.1f}x")
    verdict = "met" if worst <= TARGET_RATIO else "NOT met"
    print(f"target: within {TARGET_RATIO:.0f}x of CPython on every workload: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
