"""Compact: rewrite a database's live records into fresh files, giving back deleted space.

Delete zeroes records in place (files only grow), so a purged history keeps its disk
until this rewrite. It is offline: it holds the writer lock throughout, so no engine can
open the database meanwhile. Every live id keeps its id and every version of its
history, oldest first, with the same payloads and the same format; only locations
change. The new directory is written beside the old one, checked (every version of
every id reads back and equals the original), then swapped in with one atomic
`renameat2(RENAME_EXCHANGE)` where the file system has it (two renames otherwise).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from core.ourdb.config import OurDBConfig
from core.ourdb.db import OurDB
from core.ourdb.errors import OurDBError
from core.ourdb.files import fsync_dir
from core.ourdb.lock import WriterLock
from core.ourdb.meta import LOCK_NAME
from core.ourdb.quarantine import QUARANTINE_DIR
from core.ourdb.repair import check

# Live ids read and written per step: their versions go in one group commit per depth.
COMPACT_BATCH = 1_000
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class CompactError(OurDBError):
    """Compaction refused or failed; the database was left as it was."""


@dataclass
class CompactReport:
    """What a compaction kept and gave back."""

    live_ids: int
    records: int
    bytes_before: int
    bytes_after: int


def compact(path: str, progress: Callable[[str], None] | None = None) -> CompactReport:
    """Rewrite the database at `path` with only its live ids and their histories.

    Raises:
        LockedError: a writer (an engine) has the database open.
        CompactError: the database does not verify clean (run `repair` first), or the
            rewrite did not read back the same; `path` is untouched either way.
    """
    path = os.path.abspath(path)
    say = progress or (lambda _line: None)
    if not os.path.isdir(path):
        raise CompactError(f"database directory {path} does not exist")
    lock = WriterLock(os.path.join(path, LOCK_NAME), path)
    fresh = f"{path}.compact-{os.getpid()}"
    try:
        problems = check(path)
        if problems:
            raise CompactError(
                f"{path} does not verify clean ({problems[0]}); run `heroagent ourdb repair` first"
            )
        bytes_before = disk_bytes(path)
        if os.path.exists(fresh):
            shutil.rmtree(fresh)
        try:
            with OurDB(path, readonly=True) as source:
                live_ids, records = _copy(source, fresh, say)
            quarantine = os.path.join(path, QUARANTINE_DIR)
            if os.path.isdir(quarantine):
                # What earlier recoveries cut stays with the database.
                shutil.copytree(quarantine, os.path.join(fresh, QUARANTINE_DIR))
            problems = check(fresh)
            if problems:
                raise CompactError(f"the rewrite does not verify clean: {problems[0]}")
            _swap(path, fresh)
        finally:
            if os.path.exists(fresh):
                shutil.rmtree(fresh, ignore_errors=True)
    finally:
        lock.release()
    report = CompactReport(live_ids, records, bytes_before, disk_bytes(path))
    say(
        f"kept {report.live_ids} live ids, {report.records} records; "
        f"{report.bytes_before} bytes on disk before, {report.bytes_after} after"
    )
    return report


def _copy(source: OurDB, fresh: str, say: Callable[[str], None]) -> tuple[int, int]:
    """Write `source`'s live ids with their histories into a new database at `fresh`.

    Returns how many live ids and records it wrote.
    """
    layout = source.layout
    config = OurDBConfig(
        record_nr_max=layout.record_nr_max,
        incremental=layout.incremental,
        keysize=layout.keysize,
        file_size=layout.file_size,
    )
    ids = list(source)
    live_ids = records = 0
    with OurDB(fresh, config) as target:
        for start in range(0, len(ids), COMPACT_BATCH):
            chunk = ids[start : start + COMPACT_BATCH]
            chains = {record_id: _chain(source, record_id) for record_id in chunk}
            _write(target, chains)
            live_ids += len(chunk)
            records += sum(len(chain) for chain in chains.values())
            if start and start % (100 * COMPACT_BATCH) == 0:
                say(f"copied {live_ids} of {len(ids)} live ids")
        if layout.incremental:
            # Ids never come back, those of deleted records above the last live one too.
            target.reserve_ids_above(source.writer_state.next_id - 1)
        for record_id in ids:
            if _chain(target, record_id) != _chain(source, record_id):
                raise CompactError(f"id {record_id} did not read back the same after the rewrite")
    return live_ids, records


def _chain(db: OurDB, record_id: int) -> list[bytes]:
    """Every version of `record_id`, oldest first."""
    newest_first = []
    loc = db.location(record_id)
    while not loc.is_null:
        payload, header = db.read_at(loc, record_id)
        newest_first.append(payload)
        loc = header.prev
    return newest_first[::-1]


def _write(target: OurDB, chains: dict[int, list[bytes]]) -> None:
    """Write the oldest versions under their own ids, then each later depth in turn."""
    ids = sorted(chains)
    if target.layout.incremental:
        for run in _runs(ids):
            # A new record takes the next id: move the counter to the run's first id.
            # Ascending runs only ever move it up.
            target.skip_ids_to(run[0])
            got = target.set_many([chains[record_id][0] for record_id in run])
            if got != list(run):
                raise CompactError(f"ids {run[0]}..{run[-1]} came out as {got[0]}..{got[-1]}")
    else:
        target.set_many([(chains[record_id][0], record_id) for record_id in ids])
    depth = 1
    while True:
        later = [(chains[i][depth], i) for i in ids if len(chains[i]) > depth]
        if not later:
            return
        target.set_many(later)
        depth += 1


def _runs(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    """Consecutive stretches of ascending ids."""
    first = 0
    for n in range(1, len(ids) + 1):
        if n == len(ids) or ids[n] != ids[n - 1] + 1:
            yield ids[first:n]
            first = n


def _swap(path: str, fresh: str) -> None:
    """Put `fresh` at `path`; the old directory ends at `fresh` (to be removed)."""
    parent = os.path.dirname(path)
    if not _exchange(path, fresh):
        old = f"{path}.old-{os.getpid()}"
        os.rename(path, old)
        try:
            os.rename(fresh, path)
        except OSError:
            os.rename(old, path)  # put the original back: compaction changed nothing
            raise
        os.rename(old, fresh)
    fsync_dir(parent)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not available."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), a)


def disk_bytes(path: str) -> int:
    """Bytes the directory takes on disk (allocated blocks: the lookup table is sparse)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total
