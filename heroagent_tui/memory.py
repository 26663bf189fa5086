"""The app's garbage collection: start-up objects left out of it, full collections rarer."""

from __future__ import annotations

import gc

# The app's start-up and the engine's: a process that runs app after app (the tests)
# freezes no more, so the garbage alive at a later start is still collected.
FREEZES = 2
# Python's own thresholds for the young generations; a full collection after 100
# collections of the middle one instead of 10. At full flow the middle one runs about
# five times a second, so a full collection came every two seconds; now at most every
# twenty (cyclic garbage waits that long to be freed; everything else goes at once).
# In the app these replace the engine's (core.memory, 7,000 for the young one, set as
# the engine starts): a key waits behind a young collection, and with 7,000 or more
# the longest of them held the loop for over 100 ms.
THRESHOLDS = (700, 10, 100)
_frozen = 0


def freeze_startup() -> None:
    """Move every object alive now out of the collector's reach (`gc.freeze`).

    A full collection walks every tracked object, and on the app's loop it holds the
    next key for as long: the modules, classes and functions the start-up made (some
    130,000 objects with the engine, Textual and the HTTP UI loaded) cost about 0.1 s of
    every collection, and they live as long as the app. Frozen, they are still freed by
    reference counting; only a cycle among them is never collected. Called once the
    first screen is up, and again once the engine has started (its services' objects
    are as long-lived); at most `FREEZES` times a process. Full collections also come
    less often (`THRESHOLDS`).
    """
    global _frozen
    if _frozen < FREEZES:
        _frozen += 1
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
