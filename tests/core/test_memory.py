"""The engine's objects frozen out of full collections while it runs; its malloc arenas capped."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from core.memory import THRESHOLDS, freeze_long_lived, limit_malloc_arenas, thaw_long_lived


def test_frozen_while_an_engine_runs_and_thawed_after_the_last() -> None:
    before = gc.get_threshold()
    freeze_long_lived()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == THRESHOLDS
    freeze_long_lived()  # a second engine in the same process
    thaw_long_lived()
    assert gc.get_freeze_count() > 0  # one still runs
    thaw_long_lived()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    thaw_long_lived()  # more thaws than freezes change nothing
    assert gc.get_threshold() == before


_THREADS_ALLOCATE = """
import ctypes, sys, threading
from core.memory import limit_malloc_arenas
if sys.argv[1] == "capped":
    assert limit_malloc_arenas(1)
def allocate():
    # Past pymalloc's 512 bytes and below mmap's threshold: from the thread's arena.
    kept = [bytes(2_000) + bytes([n % 256]) for n in range(2_000)]
    barrier.wait()
barrier = threading.Barrier(5)
threads = [threading.Thread(target=allocate) for _ in range(4)]
for thread in threads:
    thread.start()
barrier.wait()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    run = subprocess.run(
        [sys.executable, "-c", _THREADS_ALLOCATE, mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return sum(line.startswith("Arena ") for line in run.stderr.splitlines())


def test_threads_share_the_capped_malloc_arenas() -> None:
    assert _arenas("default") > 1
    assert _arenas("capped") == 1


def test_the_users_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert not limit_malloc_arenas()
