"""Purge: delete ended jobs from the history (OurDB, the index, their result files)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

from core.events import JobFilter, JobsPurged
from core.jobs.manager import JobManager
from core.jobs.model import Job, is_damaged
from core.ourdb import CorruptRecordError, InvalidIdError, RecordNotFoundError

log = logging.getLogger(__name__)

# Jobs checked and deleted per step: one index query, one Redis round trip, one OurDB
# sync and one index transaction each, so a step costs tens of milliseconds.
PURGE_BATCH = 1_000
_RESULT_FILE = re.compile(r"(\d+)-\d+\.txt")

Progress = Callable[[int], None]


class PurgeOptions(TypedDict, total=False):
    """The keyword arguments of `purge` after the filter, for those that pass them on."""

    ended_before: float | None
    keep: int
    limit: int | None
    progress: Progress | None


async def purge(
    manager: JobManager,
    flt: JobFilter,
    *,
    ended_before: float | None = None,
    keep: int = 0,
    limit: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Delete ended jobs the filter finds, oldest first; returns how many went.

    Only jobs whose latest stored version is done or error and that Redis no longer
    holds are taken (a requeue waits for the batch it races with, and the other way
    round). A job goes whole: every version in OurDB is zeroed, its index row goes (its
    id is remembered as gone, never handed out again) and so do its result files.
    `ended_before` keeps jobs that ended at or after that time, `keep` keeps the newest
    `keep` matches, `limit` stops after that many. `progress` is called with the running
    total after each batch, and the bus gets a `JobsPurged` with the batch's ids. All file
    and SQLite work runs in threads.
    """
    results = await asyncio.to_thread(_result_files, manager.results_dir)
    purged = 0
    after = 0
    while limit is None or purged < limit:
        size = PURGE_BATCH if limit is None else min(PURGE_BATCH, limit - purged)
        ids = await asyncio.to_thread(
            manager.index.ended_ids,
            flt,
            ended_before=ended_before,
            keep=keep,
            limit=size,
            after_id=after,
        )
        if not ids:
            break
        after = ids[-1]
        # A batch runs to its end even when the purge is cancelled (a stopping engine,
        # a client gone): OurDB and the index must not disagree on what went. The jobs
        # service waits for it before it closes them.
        batch = asyncio.ensure_future(_batch(manager, ids, ended_before, results))
        manager.purge_batches.add(batch)
        batch.add_done_callback(manager.purge_batches.discard)
        count = await asyncio.shield(batch)
        purged += count
        if progress is not None:
            progress(purged)
    if purged:
        log.info("purged %d ended jobs from the history", purged)
    return purged


async def _batch(
    manager: JobManager,
    ids: Sequence[int],
    ended_before: float | None,
    results: dict[int, list[Path]],
) -> int:
    """Check and delete one batch; how many went."""
    async with manager.ended_lock:
        live = await manager.queue.get_live_many(ids)
        doomed, gone = await asyncio.to_thread(
            _check, manager, [i for i in ids if i not in live], ended_before
        )
        # Under the history lock: a version reported late finds the ids gone, never a
        # row that is about to go.
        async with manager.history_lock:
            await manager.db.delete_many(doomed)
            await asyncio.to_thread(manager.index.delete, doomed + gone)
    manager.purged += len(doomed)
    if doomed:
        # One event per batch (PURGE_BATCH ids at most): open lists drop the rows.
        manager.bus.publish(JobsPurged(job_ids=tuple(doomed)))
    files = [path for job_id in doomed for path in results.get(job_id, ())]
    if files:
        await asyncio.to_thread(_remove, files)
    return len(doomed)


def _check(
    manager: JobManager, job_ids: Sequence[int], ended_before: float | None
) -> tuple[list[int], list[int]]:
    """Which of these ids OurDB holds as ended (to delete), and which it has no record of.

    The index row may lag its job: the stored version decides. A damaged version is
    left alone (what it was cannot be told).
    """
    get = manager.db.db.get
    doomed: list[int] = []
    gone: list[int] = []
    for job_id in job_ids:
        try:
            raw = get(job_id)
        except (RecordNotFoundError, InvalidIdError):
            gone.append(job_id)
            continue
        except CorruptRecordError:
            continue
        try:
            job = Job.from_json(raw, job_id)
        except (ValueError, TypeError, KeyError):
            continue
        if is_damaged(job) or not job.status.ended:
            continue
        if ended_before is not None and job.time_end >= ended_before:
            continue
        doomed.append(job_id)
    return doomed, gone


def _result_files(results_dir: Path) -> dict[int, list[Path]]:
    """Every result file (`<id>-<ms>.txt`) by job id; a job may have one per version."""
    found: dict[int, list[Path]] = {}
    try:
        entries = list(os.scandir(results_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        match = _RESULT_FILE.fullmatch(entry.name)
        if match:
            found.setdefault(int(match[1]), []).append(Path(entry.path))
    return found


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # the job is gone already; a stray file is only disk
            log.warning("could not remove result file %s: %s", path, exc)
