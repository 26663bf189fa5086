"""Child process for crash tests: writes in a loop and reports each acknowledged write.

Usage: python -m tests.core.ourdb.child MODE PATH [ARGS...]

Every acknowledged write is printed as "ack ID SEED" and flushed before the next write,
so the parent knows exactly what was acknowledged when it kills this process.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys

from core.ourdb import AsyncOurDB, OurDB, OurDBConfig, SyncMode, WriteFailedError


def payload(seed: int) -> bytes:
    """Deterministic payload of varying length for a seed, which it always names in full.

    Never cut shorter than "seed-N-": a cut one ("seed-2" of seed 2395) would read as
    another seed, and the crash tests read seeds back from what survived.
    """
    name = f"seed-{seed}-".encode()
    return (name * (1 + seed % 23))[: max(len(name), 1 + (seed * 7919) % 3000)]


def report(kind: str, *values: object) -> None:
    sys.stdout.write(" ".join([kind, *map(str, values)]) + "\n")
    sys.stdout.flush()


def loop_writes(path: str, start_seed: int) -> None:
    """Insert and update forever (until killed)."""
    cfg = OurDBConfig(record_nr_max=1_000_000, file_size=256 * 1024, journal_limit=64 * 1024)
    db = OurDB(path, cfg)
    report("ready", os.getpid())
    seed = start_seed
    live: list[int] = list(db)
    while True:
        if live and seed % 4 == 3:
            record_id = db.set(payload(seed), id=live[seed % len(live)])
        elif seed % 9 == 5:
            items = [payload(seed + k) for k in range(5)]
            for k, record_id in enumerate(db.set_many(items)):
                report("ack", record_id, seed + k)
                live.append(record_id)
            seed += 5
            continue
        else:
            record_id = db.set(payload(seed))
            live.append(record_id)
        report("ack", record_id, seed)
        seed += 1


async def _async_writes(path: str, start_seed: int) -> None:
    cfg = OurDBConfig(record_nr_max=1_000_000, file_size=256 * 1024, journal_limit=64 * 1024)
    async with AsyncOurDB(path, cfg) as db:
        report("ready", os.getpid())
        seed = start_seed
        while True:
            seeds = list(range(seed, seed + 20))
            ids = await asyncio.gather(*(db.set(payload(s)) for s in seeds))
            for record_id, s in zip(ids, seeds, strict=True):
                report("ack", record_id, s)
            seed += 20


def fill_until_failure(path: str, limit: int, journal_limit: int) -> None:
    """Write under RLIMIT_FSIZE until a write fails, then check that writes stay refused."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so write() fails with EFBIG
    cfg = OurDBConfig(record_nr_max=100_000, journal_limit=journal_limit)
    db = OurDB(path, cfg)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    seed = 0
    try:
        while True:
            record_id = db.set(payload(seed))
            report("ack", record_id, seed)
            seed += 1
    except WriteFailedError as exc:
        report("failed", str(exc).replace("\n", " "))
    try:
        db.set(b"after failure")
    except WriteFailedError:
        report("refused")
    os._exit(0)  # no close: the crash path is what is being tested


def bulk_without_close(path: str, count: int, sync: str) -> None:
    """`count` single writes, then exit without closing."""
    cfg = OurDBConfig(record_nr_max=100_000, sync=SyncMode(sync), journal_limit=256 * 1024)
    db = OurDB(path, cfg)
    for seed in range(count):
        db.set(payload(seed))
    report("next_id", db.next_id())
    os._exit(0)


def main() -> None:
    mode, path, *args = sys.argv[1:]
    if mode == "loop":
        loop_writes(path, int(args[0]))
    elif mode == "async-loop":
        asyncio.run(_async_writes(path, int(args[0])))
    elif mode == "fill":
        fill_until_failure(path, int(args[0]), int(args[1]))
    elif mode == "bulk":
        bulk_without_close(path, int(args[0]), args[1])
    elif mode == "open":
        try:
            OurDB(path)
        except Exception as exc:
            report("error", type(exc).__name__, exc)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
