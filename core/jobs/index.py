"""JobIndex: a SQLite index over the job history for filtered, paged listing; rebuilt from OurDB."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from core.events import JobFilter
from core.jobs.model import Job

SCHEMA_VERSION = 2
_TEXT_CHARS = 400  # how much of params/error the text filter searches
# Batches up to this many rows are indexed on the caller's thread (`upsert_now`).
INLINE_ROWS = 64

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    circle TEXT NOT NULL,
    topic TEXT NOT NULL,
    params_type TEXT NOT NULL,
    time_scheduled REAL NOT NULL,
    time_end REAL NOT NULL,
    text TEXT NOT NULL,
    -- CRC-32 of the OurDB record this row was made from (NULL: unknown), so a check
    -- against OurDB needs no parsing.
    crc INTEGER,
    -- 1 for a dead letter: ended in error after its last allowed attempt.
    dead INTEGER NOT NULL DEFAULT 0,
    -- The revision of the version this row was made from (0: from before revisions).
    revision INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, id);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (circle, topic, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Counts per queue and status, kept by triggers so queue stats cost no scan at 1M jobs.
CREATE TABLE IF NOT EXISTS counts (
    circle TEXT NOT NULL, topic TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (circle, topic, status)
);
CREATE TRIGGER IF NOT EXISTS jobs_counted_in AFTER INSERT ON jobs BEGIN
    INSERT INTO counts VALUES (new.circle, new.topic, new.status, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS jobs_counted_out AFTER DELETE ON jobs BEGIN
    UPDATE counts SET n = n - 1
    WHERE circle = old.circle AND topic = old.topic AND status = old.status;
END;
CREATE TRIGGER IF NOT EXISTS jobs_recounted AFTER UPDATE OF status, circle, topic ON jobs BEGIN
    UPDATE counts SET n = n - 1
    WHERE circle = old.circle AND topic = old.topic AND status = old.status;
    INSERT INTO counts VALUES (new.circle, new.topic, new.status, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
-- Job dependencies, parent -> child, so a job's dependants can be listed.
CREATE TABLE IF NOT EXISTS edges (
    parent INTEGER NOT NULL, child INTEGER NOT NULL, PRIMARY KEY (parent, child)
) WITHOUT ROWID;
-- Ids purged from OurDB on purpose (or found gone): reconcile counts them as present.
CREATE TABLE IF NOT EXISTS gone (id INTEGER PRIMARY KEY);
INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}');
"""
ENDED = ("done", "error")
# An upsert, not INSERT OR REPLACE: REPLACE deletes without firing the triggers.
_UPSERT = (
    "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET "
    "status = excluded.status, circle = excluded.circle, topic = excluded.topic, "
    "params_type = excluded.params_type, time_scheduled = excluded.time_scheduled, "
    "time_end = excluded.time_end, text = excluded.text, crc = excluded.crc, "
    "dead = excluded.dead, revision = excluded.revision"
)
_INSERT_NEW = "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING"
# Set at a clean close, cleared (durably) at open: unset means the last run may have
# died between an OurDB write and its index update.
_CLEAN = "clean"


class JobIndex:
    """Thread-safe; every call is short and meant to run off the event loop.

    It holds only what listing needs, so losing it costs a rebuild, never data.
    Writes are not fsynced: the engine reconciles it with OurDB at start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if columns and "crc" not in columns:
            # An index of schema 1: its rows get their CRC when reconcile checks them.
            self._db.execute("ALTER TABLE jobs ADD COLUMN crc INTEGER")
            self._db.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema'")
        if columns and "dead" not in columns:
            # Rows from before dead letters: none is one until its next version.
            self._db.execute("ALTER TABLE jobs ADD COLUMN dead INTEGER NOT NULL DEFAULT 0")
        if columns and "revision" not in columns:
            # Rows from before revisions: any version counts as newer until their next one.
            self._db.execute("ALTER TABLE jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
        self._db.executescript(_SCHEMA)
        # An index written before the counts table existed: count it once.
        if self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM counts)").fetchone()[0]:
            self._db.execute(
                "INSERT INTO counts SELECT circle, topic, status, COUNT(*) FROM jobs "
                "GROUP BY circle, topic, status"
            )

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def upsert(
        self, jobs: Iterable[Job], crcs: Mapping[int, int] | None = None, *, new: bool = False
    ) -> None:
        """Record the latest state of these jobs, in one transaction.

        `crcs` gives the CRC-32 of the OurDB record each job was stored as; a job without
        one is indexed with an unknown CRC. With `new` (jobs just created) a job that
        has a row keeps it: only a later version of it can have written one, so the
        first version may be indexed after it is queued, while later ones are stored.
        """
        jobs = list(jobs)
        rows = self._rows(jobs, crcs)
        edges = _edges(jobs)
        with self._lock:
            self._write(rows, edges, new=new)

    def upsert_now(
        self, jobs: Iterable[Job], crcs: Mapping[int, int] | None = None, *, new: bool = False
    ) -> bool:
        """`upsert` on the calling thread if that is quick, else False and nothing done.

        Quick means a small batch and the lock free at once: then the engine's loop skips
        a thread hop per persisted batch; it never waits here behind a long listing.
        """
        jobs = list(jobs)
        if len(jobs) > INLINE_ROWS and len({job.job_id for job in jobs}) > INLINE_ROWS:
            return False  # too many rows: not even made here, the caller's thread does that
        rows = self._rows(jobs, crcs)
        with self._quickly(len(rows)) as quick:
            if quick:
                self._write(rows, _edges(jobs), new=new)
        return quick

    def revisions(self, job_ids: Sequence[int]) -> tuple[dict[int, int], set[int]]:
        """The revision each of these jobs' indexed row shows, and those purged among them."""
        with self._lock:
            return self._revisions(job_ids)

    def revisions_now(self, job_ids: Sequence[int]) -> tuple[dict[int, int], set[int]] | None:
        """`revisions` on the calling thread if that is quick (as `upsert_now`), else None."""
        with self._quickly(len(job_ids)) as quick:
            return self._revisions(job_ids) if quick else None

    def _revisions(
        self, job_ids: Sequence[int], batch: int = 450
    ) -> tuple[dict[int, int], set[int]]:
        revisions: dict[int, int] = {}
        purged: set[int] = set()
        for start in range(0, len(job_ids), batch):
            chunk = tuple(job_ids[start : start + batch])
            marks = ",".join("?" * len(chunk))
            # One statement for both tables: a purged id reads as revision -1.
            rows = self._db.execute(
                f"SELECT id, revision FROM jobs WHERE id IN ({marks}) UNION ALL "
                f"SELECT id, -1 FROM gone WHERE id IN ({marks})",
                chunk + chunk,
            ).fetchall()
            for job_id, revision in rows:
                if revision < 0:
                    purged.add(int(job_id))
                else:
                    revisions[int(job_id)] = int(revision)
        return revisions, purged

    @contextmanager
    def _quickly(self, rows: int) -> Iterator[bool]:
        """Holds the lock and gives True when `rows` are few and the lock is free at once."""
        if rows > INLINE_ROWS or not self._lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            self._lock.release()

    @staticmethod
    def _rows(jobs: Iterable[Job], crcs: Mapping[int, int] | None) -> list[tuple[object, ...]]:
        crcs = crcs or {}
        # Only a job's last version in the batch counts: its row ends up the same, and a
        # batch often holds a job's active version and its end.
        latest = {job.job_id: job for job in jobs}
        return [
            (
                job.job_id,
                str(job.status),  # a StrEnum's str is its value, without Enum.value's cost
                job.circle_id,
                job.topic,
                str(job.params_type),
                job.time_scheduled,
                job.time_end,
                (job.params[:_TEXT_CHARS] + "\n" + job.error[:_TEXT_CHARS]).lower(),
                crcs.get(job.job_id),
                int(job.dead),
                job.revision,
            )
            for job in latest.values()
        ]

    def _write(
        self,
        rows: list[tuple[object, ...]],
        edges: Sequence[tuple[int, int]] = (),
        *,
        new: bool = False,
    ) -> None:
        """Upsert rows (and add dependency edges) in one transaction; the caller holds the lock.

        With `new`, a row already there is left as it is (see `upsert`).
        """
        self._db.execute("BEGIN")
        self._db.executemany(_INSERT_NEW if new else _UPSERT, rows)
        if edges:
            self._db.executemany("INSERT OR IGNORE INTO edges VALUES (?, ?)", edges)
        self._db.execute("COMMIT")

    def delete(self, job_ids: Sequence[int]) -> None:
        """Forget these jobs (OurDB has no record of them, purged or lost).

        Their ids are remembered as gone, so reconcile does not look for them again.
        """
        rows = [(i,) for i in job_ids]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM jobs WHERE id = ?", rows)
            self._db.executemany("INSERT OR IGNORE INTO gone VALUES (?)", rows)
            self._db.executemany(
                "DELETE FROM edges WHERE child = ? OR parent = ?", [(i, i) for i in job_ids]
            )
            self._db.execute("COMMIT")

    def children(self, job_id: int, limit: int = 1_000) -> list[int]:
        """The ids of the jobs that depend on this one, oldest first."""
        with self._lock:
            found = self._db.execute(
                "SELECT child FROM edges WHERE parent = ? ORDER BY child LIMIT ?", (job_id, limit)
            ).fetchall()
        return [int(row[0]) for row in found]

    def rows(self, first: int, last: int) -> dict[int, tuple[str, int | None]]:
        """Status and CRC of every indexed job with an id in `first..last`."""
        with self._lock:
            found = self._db.execute(
                "SELECT id, status, crc FROM jobs WHERE id BETWEEN ? AND ?", (first, last)
            ).fetchall()
        return {int(r[0]): (str(r[1]), None if r[2] is None else int(r[2])) for r in found}

    def missing_ids(self, last: int, batch: int = 10_000) -> list[int]:
        """Ids in `1..last` the index has no row for.

        One COUNT per `batch` ids (the primary key answers it without reading rows); only
        a range that comes up short is listed, so a complete index costs milliseconds.
        """
        missing: list[int] = []
        # A gone id has no row and never will: it counts as present.
        count_sql = (
            "SELECT (SELECT COUNT(*) FROM jobs WHERE id BETWEEN ?1 AND ?2)"
            " + (SELECT COUNT(*) FROM gone WHERE id BETWEEN ?1 AND ?2)"
        )
        with self._lock:
            if int(self._db.execute(count_sql, (1, last)).fetchone()[0]) >= last:
                return missing
            for first in range(1, last + 1, batch):
                end = min(last, first + batch - 1)
                count = self._db.execute(count_sql, (first, end)).fetchone()[0]
                if int(count) == end - first + 1:
                    continue
                present = {
                    int(r[0])
                    for r in self._db.execute(
                        "SELECT id FROM jobs WHERE id BETWEEN ?1 AND ?2"
                        " UNION SELECT id FROM gone WHERE id BETWEEN ?1 AND ?2",
                        (first, end),
                    )
                }
                missing.extend(i for i in range(first, end + 1) if i not in present)
        return missing

    def was_clean(self) -> bool:
        """Whether the index was closed cleanly after its last write."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_CLEAN,)).fetchone()
        return row is not None and row[0] == "1"

    def mark_clean(self, clean: bool) -> None:
        """Record (durably: this one write is synced) whether the index is closed cleanly."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute(
                    "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                    "SET value = excluded.value",
                    (_CLEAN, "1" if clean else "0"),
                )
            finally:
                self._db.execute("PRAGMA synchronous=OFF")

    def max_id(self) -> int:
        """The highest id the index has seen, purged ones included (0 when none)."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX((SELECT COALESCE(MAX(id), 0) FROM jobs),"
                " (SELECT COALESCE(MAX(id), 0) FROM gone))"
            ).fetchone()
        return int(row[0])

    def ids_with_status(self, statuses: Sequence[str]) -> list[int]:
        """Ids of jobs whose indexed status is one of these."""
        marks = ",".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE status IN ({marks}) ORDER BY id", tuple(statuses)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def ended_among(self, job_ids: Sequence[int], batch: int = 900) -> set[int]:
        """The ones among these ids whose indexed status is done or error."""
        ended: set[int] = set()
        with self._lock:
            for start in range(0, len(job_ids), batch):
                chunk = tuple(job_ids[start : start + batch])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id FROM jobs WHERE status IN ('done', 'error') AND id IN ({marks})",
                    chunk,
                ).fetchall()
                ended.update(int(r[0]) for r in rows)
        return ended

    def query(self, flt: JobFilter, *, limit: int, before_id: int | None = None) -> list[int]:
        """Ids matching the filter, newest first, at most `limit`, below `before_id`."""
        where, args = _where(flt)
        if before_id is not None:
            where.append("id < ?")
            args.append(before_id)
        sql = "SELECT id FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [int(r[0]) for r in rows]

    def ended_ids(
        self,
        flt: JobFilter,
        *,
        ended_before: float | None = None,
        keep: int = 0,
        limit: int,
        after_id: int = 0,
    ) -> list[int]:
        """Ended jobs the filter finds that a purge may take, oldest first.

        `ended_before` (epoch seconds) keeps jobs that ended at or after it; `keep` keeps
        the newest `keep` matches (newest by id: ids grow with submission). The status
        must be an ended one, or None for both.
        """
        if flt.status is not None and flt.status not in ENDED:
            raise ValueError(f"status {flt.status!r} is not ended; purge takes done or error")
        where, args = _where(flt)
        if flt.status is None:
            where.append("status IN ('done', 'error')")
        if ended_before is not None:
            where.append("time_end < ?")
            args.append(ended_before)
        clause = " AND ".join(where)
        with self._lock:
            if keep > 0:
                # The newest job beyond the `keep` newest: it and older ones may go.
                row = self._db.execute(
                    f"SELECT id FROM jobs WHERE {clause} ORDER BY id DESC LIMIT 1 OFFSET ?",
                    (*args, keep),
                ).fetchone()
                if row is None:
                    return []
                clause += f" AND id <= {int(row[0])}"
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE {clause} AND id > ? ORDER BY id LIMIT ?",
                (*args, after_id, limit),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def counts(self) -> dict[tuple[str, str, str], int]:
        """Jobs per (circle, topic, status)."""
        with self._lock:
            rows = self._db.execute("SELECT circle, topic, status, n FROM counts").fetchall()
        return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


def _edges(jobs: Sequence[Job]) -> list[tuple[int, int]]:
    """The (parent, child) edges of these jobs; most jobs have none."""
    return [(parent, job.job_id) for job in jobs if job.depends_on for parent in job.depends_on]


def _where(flt: JobFilter) -> tuple[list[str], list[object]]:
    """The SQL conditions (and their arguments) of a filter."""
    where: list[str] = []
    args: list[object] = []
    for column, value in (
        ("status", flt.status),
        ("circle", flt.circle),
        ("topic", flt.topic),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if flt.dead is not None:
        where.append("dead = ?")
        args.append(int(bool(flt.dead)))
    if flt.since is not None:
        where.append("time_scheduled >= ?")
        args.append(flt.since)
    if flt.until is not None:
        where.append("time_scheduled < ?")
        args.append(flt.until)
    if flt.text:
        escaped = flt.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("text LIKE ? ESCAPE '\\'")
        args.append(f"%{escaped}%")
    return where, args
