"""The engine process's memory: its objects kept out of full collections, its malloc arenas few."""

from __future__ import annotations

import ctypes
import gc
import os
import sys

# A young collection after 7,000 new container objects instead of 700: a 1,000-job
# submit makes some tens of thousands, most of them alive until its reply, and each
# young collection walked those alive (2-3 µs a job in all; now under 1). A full
# collection after 100 collections of the middle one instead of 10. Cyclic garbage
# waits longer to be freed; everything else is freed by reference counting at once.
THRESHOLDS = (7_000, 10, 100)
_running = 0
_saved_thresholds = gc.get_threshold()


def freeze_long_lived() -> None:
    """Move every object alive now out of the collector's reach (`gc.freeze`).

    Called once an engine has started: a full collection walks every tracked object and
    holds the loop meanwhile, and with the engine's modules, classes and services loaded
    that was some 60 ms, one every few 1,000-job submits (about a fifth of a bulk
    submit's CPU). Frozen, those objects are still freed by reference counting; a cycle
    among them waits for `thaw_long_lived`, when the last running engine stops.
    """
    global _running, _saved_thresholds
    if _running == 0:
        _saved_thresholds = gc.get_threshold()
        gc.set_threshold(*THRESHOLDS)
    _running += 1
    gc.freeze()


def thaw_long_lived() -> None:
    """Undo one `freeze_long_lived`; the last one gives the frozen objects back to the collector.

    So a process that starts engine after engine (the tests) does not keep the cycles of
    the stopped ones for good.
    """
    global _running
    if _running == 0:
        return
    _running -= 1
    if _running == 0:
        gc.unfreeze()
        gc.set_threshold(*_saved_thresholds)


# glibc's mallopt parameter for the number of malloc arenas.
_M_ARENA_MAX = -8
# Arenas for the whole process. Each thread that allocates gets an arena of its own by
# default (up to eight per core), and the freed memory of one arena is not reused by
# another: with the engine on a thread beside the terminal app's, the process's RSS more
# than doubled (bench.tui: some 160 MiB became 356). The GIL lets one thread allocate at a
# time anyway, so sharing arenas costs next to no waiting.
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap the process's malloc arenas (glibc only; elsewhere nothing). Call before threads start.

    Returns whether the cap was set. `MALLOC_ARENA_MAX` in the environment wins: it is
    the user's choice.
    """
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
