"""The engine process's garbage collection: its long-lived objects kept out of full collections."""

from __future__ import annotations

import gc

# Python's own thresholds for the young generations; a full collection after 100
# collections of the middle one instead of 10 (cyclic garbage waits longer to be freed;
# everything else is freed by reference counting at once).
THRESHOLDS = (700, 10, 100)
_frozen = False


def freeze_long_lived() -> bool:
    """Move every object alive now out of the collector's reach (`gc.freeze`), once a process.

    A full collection walks every tracked object and holds the loop meanwhile: with the
    engine's modules, classes and services loaded that is some 60 ms, and a batch of
    1,000 submits made one every few batches (about a fifth of a bulk submit's CPU).
    Frozen, those objects are still freed by reference counting; only a cycle among
    them is never collected. Once a process, so a process that starts engine after engine
    (the tests) does not keep freezing the garbage of the ones before. True when it froze.
    """
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return True
