"""API semantics, refusals before any write, sync modes and the async wrapper."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.ourdb import (
    AsyncOurDB,
    ConfigError,
    CorruptRecordError,
    DatabaseFullError,
    InvalidIdError,
    LocationOverflowError,
    OurDB,
    OurDBConfig,
    PayloadTooLargeError,
    ReadOnlyError,
    RecordNotFoundError,
    SyncMode,
)


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.suffix == ".db"}


def test_refusals_write_nothing(tmp_path: Path) -> None:
    cfg = OurDBConfig(record_nr_max=100, keysize=2, incremental=False, file_size=10)
    with OurDB(tmp_path / "db", cfg) as db:
        db.set(b"first", id=1)
        before = snapshot(tmp_path / "db")
        journal = (tmp_path / "db" / "ourdb.journal").stat().st_size
        with pytest.raises(PayloadTooLargeError, match="70000 bytes exceeds"):
            db.set(b"x" * 70_000, id=2)
        with pytest.raises(InvalidIdError, match="out of range"):
            db.set(b"x", id=100)
        with pytest.raises(InvalidIdError, match="out of range"):
            db.get(-1)
        # 0.db is past file_size, so the next record would go to 1.db: keysize 2 cannot.
        with pytest.raises(LocationOverflowError, match=r"1\.db at offset 1.*keysize 2"):
            db.set(b"x", id=3)
        with pytest.raises(LocationOverflowError):
            db.set_many([(b"ok", 4), (b"x", 5)])
        assert snapshot(tmp_path / "db") == before
        assert (tmp_path / "db" / "ourdb.journal").stat().st_size == journal
        assert list(db) == [1]


def test_no_u32_aliasing(tmp_path: Path) -> None:
    with OurDB(tmp_path / "db", OurDBConfig(record_nr_max=1000, keysize=4)) as db:
        db.set(b"one")
        with pytest.raises(InvalidIdError):
            db.get(2**30 + 1)


def test_reads_never_create_files(tmp_path: Path) -> None:
    with OurDB(tmp_path / "db", OurDBConfig(record_nr_max=100, keysize=6)) as db:
        db.set(b"a")
    os.unlink(tmp_path / "db" / "0.db")
    with (
        OurDB(tmp_path / "db", readonly=True) as db,
        pytest.raises(CorruptRecordError, match="data file is missing"),
    ):
        db.get(1)
    assert not (tmp_path / "db" / "0.db").exists()


def test_readonly_refuses_writes(tmp_path: Path) -> None:
    with OurDB(tmp_path / "db") as db:
        db.set(b"a")
    with OurDB(tmp_path / "db", readonly=True) as db, pytest.raises(ReadOnlyError):
        db.set(b"b")


def test_config_mismatch_is_an_error(tmp_path: Path) -> None:
    with OurDB(tmp_path / "db", OurDBConfig(record_nr_max=100)):
        pass
    with pytest.raises(ConfigError, match="record_nr_max=100"):
        OurDB(tmp_path / "db", OurDBConfig(record_nr_max=200))
    with OurDB(tmp_path / "db") as db:  # None adopts what is stored
        assert db.layout.record_nr_max == 100


def test_continues_highest_file_after_reopen(tmp_path: Path) -> None:
    cfg = OurDBConfig(record_nr_max=100, keysize=6, file_size=30)
    with OurDB(tmp_path / "db", cfg) as db:
        ids = [db.set(bytes([65 + n]) * 20) for n in range(5)]
    with OurDB(tmp_path / "db", cfg) as db:
        new = db.set(b"new")
        assert db.location(new).file_nr == 5
        assert [db.get(i) for i in ids] == [bytes([65 + n]) * 20 for n in range(5)]


def test_set_many_is_one_sync(tmp_path: Path) -> None:
    with OurDB(tmp_path / "db", OurDBConfig(record_nr_max=10_000)) as db:
        before = db.stats.syncs
        ids = db.set_many([b"p%d" % n for n in range(1000)])
        assert db.stats.syncs == before + 1
        assert ids == list(range(1, 1001))
        assert db.get(500) == b"p499"


@pytest.mark.parametrize("mode", list(SyncMode))
def test_sync_modes_read_their_writes(tmp_path: Path, mode: SyncMode) -> None:
    cfg = OurDBConfig(record_nr_max=100, sync=mode, batch_window=0.01)
    with OurDB(tmp_path / "db", cfg) as db:
        record_id = db.set(b"a")
        db.set(b"b", id=record_id)
        assert db.get(record_id) == b"b"
        assert db.get_history(record_id, 2) == [b"b", b"a"]
        db.delete(record_id)
        with pytest.raises(RecordNotFoundError):
            db.get(record_id)
        kept = db.set(b"kept")
        db.sync()
    with OurDB(tmp_path / "db") as db:
        assert list(db) == [kept]


def test_history_depth_zero_and_missing(tmp_path: Path) -> None:
    with OurDB(tmp_path / "db", OurDBConfig(record_nr_max=100)) as db:
        assert db.get_history(5, 0) == []
        with pytest.raises(RecordNotFoundError, match="id 5"):
            db.get_history(5, 1)


def test_get_now_answers_only_what_one_read_can(tmp_path: Path) -> None:
    with OurDB(tmp_path / "db") as db:
        record_id = db.set(b"hello")
        assert db.get_now(record_id) == b"hello"
        # Missing or out of range: None, and `get` says why.
        assert db.get_now(record_id + 1) is None
        assert db.get_now(-1) is None
        with pytest.raises(RecordNotFoundError):
            db.get(record_id + 1)
        # A writer holding the lock: None at once rather than waiting for it.
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with db._lock:
                held.set()
                release.wait()

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            assert db.get_now(record_id) is None
        finally:
            release.set()
            holder.join()
        assert db.get_now(record_id) == b"hello"


async def test_async_group_commit_shares_one_fsync(tmp_path: Path) -> None:
    async with AsyncOurDB(tmp_path / "db", OurDBConfig(record_nr_max=1000)) as db:
        before = db.db.stats.syncs
        ids = await asyncio.gather(*(db.set(b"job %d" % n) for n in range(50)))
        # The first finds the writer idle and goes at once; the 49 that find it busy
        # share one more (or all 50 share one, when the writer took both together).
        assert db.db.stats.syncs - before in (1, 2)
        assert sorted(ids) == list(range(1, 51))
        assert await db.get(ids[7]) == b"job 7"
        await db.set(b"job 7 v2", id=ids[7])
        assert await db.get_history(ids[7], 5) == [b"job 7 v2", b"job 7"]
        assert await db.next_id() == 51
        await db.delete(ids[0])
        assert await db.ids() == list(range(2, 51))


def _hold_the_loop_until(done: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Block the calling thread (the event loop's) until `done()`; False after `seconds`."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


async def test_a_lone_write_is_not_held_for_company(tmp_path: Path) -> None:
    async with AsyncOurDB(tmp_path / "db", OurDBConfig(record_nr_max=1000)) as db:
        before = db.db.stats.commits
        write = asyncio.create_task(db.set(b"alone"))
        await asyncio.sleep(0)  # the write's task runs up to its wait for the writer
        # Nothing else runs on the loop from here: a write held back for the rest of the
        # loop's iteration, to gather company, would never reach the writer meanwhile.
        assert _hold_the_loop_until(lambda: db.db.stats.commits > before)
        assert await write == 1
        # The same holds for the next lone write, once the first is answered.
        again = asyncio.create_task(db.set(b"alone again"))
        await asyncio.sleep(0)
        assert _hold_the_loop_until(lambda: db.db.stats.commits > before + 1)
        assert await again == 2


async def test_writes_that_find_the_writer_busy_share_a_commit(tmp_path: Path) -> None:
    async with AsyncOurDB(tmp_path / "db", OurDBConfig(record_nr_max=1000)) as db:
        first = asyncio.create_task(db.set(b"first"))
        await asyncio.sleep(0)  # handed to the writer: it is busy until it is answered
        before = db.db.stats.commits
        rest = [asyncio.create_task(db.set(b"job %d" % n)) for n in range(20)]
        assert await first == 1
        assert sorted(await asyncio.gather(*rest)) == list(range(2, 22))
        # The first commit may have been counted after `before` was read: at most two.
        assert db.db.stats.commits - before <= 2


async def test_async_errors_are_per_call(tmp_path: Path) -> None:
    async with AsyncOurDB(tmp_path / "db", OurDBConfig(record_nr_max=1000)) as db:
        good = db.set(b"fine")
        bad = db.set(b"x", id=999)  # incremental: no such record yet
        results = await asyncio.gather(good, bad, return_exceptions=True)
        assert results[0] == 1
        assert isinstance(results[1], InvalidIdError)
        assert await db.get(1) == b"fine"


async def test_an_early_write_answers_its_ids_before_the_sync_and_again_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncOurDB(tmp_path / "db", OurDBConfig(record_nr_max=1000)) as db:
        journal = db.db._journal
        sync = journal.sync
        gate = threading.Event()

        def held_sync() -> None:
            gate.wait(10)
            sync()

        monkeypatch.setattr(journal, "sync", held_sync)  # the sync waits for the test
        try:
            written, durable = db.start_set_many_early([b"a", b"b"])
            # The ids come while the sync is held: the records and the journal frame are
            # in the files already, and the durable answer waits.
            assert await asyncio.wait_for(written, 10) == [1, 2]
            assert not durable.done()
            assert (tmp_path / "db" / "0.db").stat().st_size > 0
        finally:
            gate.set()
        assert await durable == [1, 2]
        assert await db.get(2) == b"b"
        # A refused call gets its error on both answers.
        written, durable = db.start_set_many_early([(b"x", 999)])
        for answer in (written, durable):
            with pytest.raises(InvalidIdError):
                await answer


def test_reserve_ids_above_is_durable(tmp_path: Path) -> None:
    live, path = tmp_path / "live", tmp_path / "db"
    db = OurDB(live, OurDBConfig(record_nr_max=1000))
    try:
        assert db.set(b"one") == 1
        assert db.reserve_ids_above(41) == 42
        assert db.reserve_ids_above(10) == 42  # never moves back
        assert db.next_id() == 42
        shutil.copytree(live, path)  # what a SIGKILL right after the call leaves
    finally:
        db.close()
    with OurDB(path) as db:
        assert db.set(b"two") == 42
    with OurDB(path, min_next_id=100) as db:
        assert db.set(b"three") == 100
    with OurDB(path, min_next_id=5) as db:  # a lower floor changes nothing
        assert db.set(b"four") == 101


def test_reserve_ids_refusals(tmp_path: Path) -> None:
    kv = OurDBConfig(record_nr_max=10, incremental=False)
    with (
        OurDB(tmp_path / "kv", kv) as db,
        pytest.raises(InvalidIdError, match="incremental mode is not enabled"),
    ):
        db.reserve_ids_above(3)
    with OurDB(tmp_path / "inc", OurDBConfig(record_nr_max=10)) as db:
        with pytest.raises(InvalidIdError, match="out of range"):
            db.reserve_ids_above(10)
        db.reserve_ids_above(9)
        with pytest.raises(DatabaseFullError):
            db.set(b"no id left")
    with pytest.raises(InvalidIdError):
        OurDB(tmp_path / "kv", min_next_id=2)
    OurDB(tmp_path / "kv").close()  # the refused open released the writer lock
    with OurDB(tmp_path / "inc", readonly=True) as db, pytest.raises(ReadOnlyError):
        db.reserve_ids_above(3)


async def test_async_reserve_ids(tmp_path: Path) -> None:
    async with AsyncOurDB(tmp_path / "db", OurDBConfig(record_nr_max=1000), min_next_id=7) as db:
        assert await db.set(b"a") == 7
        assert await db.reserve_ids_above(20) == 21
        assert await db.set(b"b") == 21
