"""OurDB against SQLite (WAL, synchronous=FULL) and a raw write+fsync floor, same disk."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.ourdb import AsyncOurDB, OurDB, OurDBConfig, SyncMode

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = b'{"id":12345,"state":"running","actor":"bench","args":{"n":42},"v":3}'


@dataclass(frozen=True)
class Sizes:
    """How much work each figure does."""

    single: int
    batches: int
    batch: int
    reads: int
    read_records: int
    open_records: int
    concurrent: int


FULL = Sizes(2000, 100, 1000, 100_000, 100_000, 1_000_000, 5000)
QUICK = Sizes(100, 5, 1000, 5000, 5000, 20_000, 500)


@dataclass
class Row:
    """One figure: higher is better for rates; for times `lower_better` flips the ratio."""

    name: str
    ourdb: float
    sqlite: float | None
    floor: float | None
    unit: str
    lower_better: bool = False


def rate(n: int, seconds: float) -> float:
    """Operations per second."""
    return n / seconds if seconds > 0 else float("inf")


def timed(fn: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sqlite_open(path: Path) -> sqlite3.Connection:
    """A connection configured as the figures require."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
    return conn


def single_writes(work: Path, n: int, rounds: int = 10) -> tuple[float, float, float]:
    """Durable single writes/s for OurDB, SQLite per-commit and the raw floor.

    The three run interleaved in `rounds` slices, so load from other processes on the
    machine hits all of them alike.
    """
    fd = os.open(work / "floor.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    conn = sqlite_open(work / "s_single.sqlite")
    db = OurDB(work / "o_single", OurDBConfig())
    per = max(n // rounds, 1)
    spent = [0.0, 0.0, 0.0]

    def floor() -> None:
        for _ in range(per):
            os.write(fd, PAYLOAD)
            os.fsync(fd)

    def ours() -> None:
        for _ in range(per):
            db.set(PAYLOAD)

    def sqlite() -> None:
        for _ in range(per):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (v) VALUES (?)", (PAYLOAD,))
            conn.execute("COMMIT")

    try:
        for _ in range(rounds):
            for k, fn in enumerate((ours, sqlite, floor)):
                spent[k] += timed(fn)
    finally:
        os.close(fd)
        conn.close()
        db.close()
    return rate(per * rounds, spent[0]), rate(per * rounds, spent[1]), rate(per * rounds, spent[2])


def floor_batched(work: Path, batches: int, batch: int) -> float:
    """One write of `batch` records + one fsync per batch."""
    fd = os.open(work / "floorb.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    chunk = PAYLOAD * batch
    try:

        def run() -> None:
            for _ in range(batches):
                os.write(fd, chunk)
                os.fsync(fd)

        return rate(batches * batch, timed(run))
    finally:
        os.close(fd)


def ourdb_batched(path: Path, batches: int, batch: int) -> float:
    """`set_many` of `batch` records: one write and one sync per batch."""
    items = [PAYLOAD] * batch
    with OurDB(path, OurDBConfig()) as db:
        return rate(batches * batch, timed(lambda: [db.set_many(items) for _ in range(batches)]))


def sqlite_batched(path: Path, batches: int, batch: int) -> float:
    """`batch` INSERTs per transaction."""
    conn = sqlite_open(path)
    rows = [(PAYLOAD,)] * batch

    def run() -> None:
        for _ in range(batches):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t (v) VALUES (?)", rows)
            conn.execute("COMMIT")

    try:
        return rate(batches * batch, timed(run))
    finally:
        conn.close()


def ourdb_concurrent(work: Path, n: int, writers: int = 50) -> float:
    """`writers` coroutines each awaiting durable `set` calls through AsyncOurDB."""

    async def run() -> float:
        async with AsyncOurDB(work / "o_conc", OurDBConfig()) as db:

            async def writer(count: int) -> None:
                for _ in range(count):
                    await db.set(PAYLOAD)

            start = time.perf_counter()
            await asyncio.gather(*(writer(n // writers) for _ in range(writers)))
            return rate(n // writers * writers, time.perf_counter() - start)

    return asyncio.run(run())


def ourdb_reads(path: Path, records: int, reads: int) -> float:
    """Random `get` over `records` ids."""
    ids = [random.randint(1, records) for _ in range(reads)]
    with OurDB(path, readonly=True) as db:
        get = db.get
        return rate(reads, timed(lambda: [get(i) for i in ids]))


def sqlite_reads(path: Path, records: int, reads: int) -> float:
    """Random primary-key SELECT over `records` rows."""
    ids = [random.randint(1, records) for _ in range(reads)]
    conn = sqlite_open(path)
    query = "SELECT v FROM t WHERE id = ?"
    try:
        return rate(reads, timed(lambda: [conn.execute(query, (i,)).fetchone() for i in ids]))
    finally:
        conn.close()


def populate(work: Path, records: int) -> tuple[Path, Path]:
    """OurDB and SQLite databases with `records` records each, closed cleanly."""
    opath, spath = work / "o_big", work / "s_big.sqlite"
    with OurDB(opath, OurDBConfig(sync=SyncMode.NONE)) as db:
        for start in range(0, records, 10_000):
            db.set_many([PAYLOAD] * min(10_000, records - start))
    conn = sqlite_open(spath)
    conn.execute("PRAGMA synchronous=OFF")
    for start in range(0, records, 100_000):
        conn.execute("BEGIN")
        rows = [(PAYLOAD,)] * min(100_000, records - start)
        conn.executemany("INSERT INTO t (v) VALUES (?)", rows)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return opath, spath


def open_times(opath: Path, spath: Path, repeat: int = 5) -> tuple[float, float]:
    """Median seconds to open (writable) and read one record."""
    ours, theirs = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        db = OurDB(opath, OurDBConfig(export_on_close=False))
        db.get(1)
        ours.append(time.perf_counter() - start)
        db.close()
        start = time.perf_counter()
        conn = sqlite_open(spath)
        conn.execute("SELECT v FROM t WHERE id = 1").fetchone()
        theirs.append(time.perf_counter() - start)
        conn.close()
    return statistics.median(ours), statistics.median(theirs)


def fmt(value: float | None, unit: str) -> str:
    """A figure with its unit."""
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:,.1f} ms"
    return f"{value:,.0f}/s"


def ratio(a: float, b: float | None, lower_better: bool) -> str:
    """a relative to b, >1 means OurDB is better."""
    if b is None or a <= 0 or b <= 0:
        return "-"
    return f"{(b / a if lower_better else a / b):.2f}x"


def print_table(rows: list[Row]) -> None:
    """The plain table: figure, OurDB, SQLite, floor, ratios (>1 = OurDB better)."""
    head = ("figure", "OurDB", "SQLite", "floor", "OurDB/SQLite", "OurDB/floor")
    cells = [head] + [
        (
            r.name,
            fmt(r.ourdb, r.unit),
            fmt(r.sqlite, r.unit),
            fmt(r.floor, r.unit),
            ratio(r.ourdb, r.sqlite, r.lower_better),
            ratio(r.ourdb, r.floor, r.lower_better),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for n, c in enumerate(cells):
        padded = [
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(c, widths, strict=True))
        ]
        print("  ".join(padded))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print("ratios: >1.00x means OurDB is faster (for open time: takes less time)")


def main(argv: list[str] | None = None) -> int:
    """Run every figure and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.ourdb", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ourdb-", dir=RESULTS))
    random.seed(7)
    try:
        rows = []
        rows.append(Row("durable single writes", *single_writes(work, sizes.single), "w/s"))
        b, k = sizes.batches, sizes.batch
        rows.append(
            Row(
                f"batched writes ({k}/sync, {k}/txn)",
                ourdb_batched(work / "o_batch", b, k),
                sqlite_batched(work / "s_batch.sqlite", b, k),
                floor_batched(work, b, k),
                "w/s",
            )
        )
        rows.append(
            Row(
                "50 async writers, durable (vs SQLite per-commit)",
                ourdb_concurrent(work, sizes.concurrent),
                rows[0].sqlite,
                rows[0].floor,
                "w/s",
            )
        )
        opath, spath = populate(work, sizes.read_records)
        rows.append(
            Row(
                f"random reads over {sizes.read_records:,}",
                ourdb_reads(opath, sizes.read_records, sizes.reads),
                sqlite_reads(spath, sizes.read_records, sizes.reads),
                None,
                "r/s",
            )
        )
        shutil.rmtree(opath)
        os.unlink(spath)
        opath, spath = populate(work, sizes.open_records)
        ours, theirs = open_times(opath, spath)
        label = f"open + first read, {sizes.open_records:,} records"
        rows.append(Row(label, ours, theirs, None, "ms", lower_better=True))
        print_table(rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
