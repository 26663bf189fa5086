"""Torn tails and damaged bytes on real files: what is cut, what survives, what errors."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from core.ourdb import (
    CorruptJournalError,
    CorruptLookupError,
    CorruptRecordError,
    InvalidIdError,
    OurDB,
    OurDBConfig,
    RecordNotFoundError,
)
from core.ourdb.lock import writer_active

CFG = OurDBConfig(record_nr_max=1000, keysize=6)
PAYLOADS = {1: b"first record", 2: b"second", 3: b"third one here"}


def build(path: Path, last: bytes = b"the last record, torn below") -> int:
    """Ids 1..3 (2 updated once), then one more record; returns its id."""
    with OurDB(path, CFG) as db:
        for data in PAYLOADS.values():
            db.set(data)
        db.set(b"2 old", id=2)
        db.set(PAYLOADS[2], id=2)
        return db.set(last)


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_truncate_at_every_offset_of_last_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pristine = tmp_path / "pristine"
    last_id = build(pristine)
    with OurDB(pristine, readonly=True) as db:
        start = db.location(last_id).position
    end = (pristine / "0.db").stat().st_size
    for cut in range(start, end):
        path = tmp_path / f"cut{cut}"
        shutil.copytree(pristine, path)
        with open(path / "0.db", "r+b") as fh:
            fh.truncate(cut)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="core.ourdb"), OurDB(path) as db:
            with pytest.raises(RecordNotFoundError):
                db.get(last_id)
            for record_id, data in PAYLOADS.items():
                assert db.get(record_id) == data
            assert db.get_history(2, 5) == [PAYLOADS[2], b"2 old", PAYLOADS[2]]
            new_id = db.set(b"after the cut")
            assert db.location(new_id).position == start  # appended where the torn one began
        (message,) = [r.getMessage() for r in caplog.records]
        assert f"{path / '0.db'} at offset {start}: dropped {cut - start} bytes" in message
        with OurDB(path) as db:
            assert db.get(new_id) == b"after the cut"
        shutil.rmtree(path)


def test_a_record_lost_to_a_torn_tail_is_restored_under_its_id(tmp_path: Path) -> None:
    path = tmp_path / "db"
    last_id = build(path)
    with OurDB(path, readonly=True) as db:
        start = db.location(last_id).position
    with open(path / "0.db", "r+b") as fh:
        fh.truncate(start)
    with OurDB(path, CFG) as db:
        with pytest.raises(RecordNotFoundError):
            db.get(last_id)
        # A plain set refuses the lost id, and restore refuses an id never handed out.
        with pytest.raises(InvalidIdError, match="has no record"):
            db.set_many([(b"plain", last_id)])
        with pytest.raises(InvalidIdError, match="has no record"):
            db.set_many([(b"beyond", db.next_id())], restore=True)
        assert db.set_many([(b"restored", last_id)], restore=True) == [last_id]
        # From there on it is a record like any other, and new ids go on above it.
        db.set_many([(b"restored, then updated", last_id)], restore=True)
        assert db.set(b"next") == last_id + 1
    with OurDB(path, CFG) as db:
        assert db.warnings == []
        assert db.get_history(last_id, 5) == [b"restored, then updated", b"restored"]
        assert db.get(2) == PAYLOADS[2]


def test_torn_update_reverts_to_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "db"
    build(path)
    with OurDB(path, CFG) as db:
        db.set(b"newest, will be torn", id=3)
        start = db.location(3).position
    with open(path / "0.db", "r+b") as fh:
        fh.truncate(start + 15)  # header intact, payload torn
    with OurDB(path) as db:
        assert db.get(3) == PAYLOADS[3]


def test_crash_before_checkpoint_restores_a_truncated_record(tmp_path: Path) -> None:
    """Without a clean close the journal still holds the record and puts it back."""
    db = OurDB(tmp_path / "live", CFG)
    try:
        record_id = db.set(b"acknowledged, then the data file loses it")
        crashed = tmp_path / "crashed"
        shutil.copytree(tmp_path / "live", crashed)  # what a SIGKILL would leave
    finally:
        db.close()
    with open(crashed / "0.db", "r+b") as fh:
        fh.truncate(5)
    with OurDB(crashed) as db:
        assert db.get(record_id) == b"acknowledged, then the data file loses it"


def test_torn_journal_tail_is_cut_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = OurDB(tmp_path / "live", CFG)
    try:
        first = db.set(b"kept")
        crashed = tmp_path / "crashed"
        shutil.copytree(tmp_path / "live", crashed)
    finally:
        db.close()
    journal = crashed / "ourdb.journal"
    size = journal.stat().st_size
    garbage = b"\x40\x00\x00\x00garbage of a frame that never finished"
    with open(journal, "ab") as fh:
        fh.write(garbage)
    with caplog.at_level(logging.WARNING, logger="core.ourdb"), OurDB(crashed) as db:
        assert db.get(first) == b"kept"
    # The journal is preallocated with zeros, so the garbage sits after them.
    pattern = rf"torn journal tail in {re.escape(str(journal))} at offset \d+: dropped (\d+) bytes"
    match = re.search(pattern, caplog.text)
    assert match is not None, caplog.text
    assert int(match.group(1)) >= len(garbage)
    assert journal.stat().st_size < size + len(garbage)


def test_flip_each_byte_of_a_record(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    build(pristine)
    with OurDB(pristine, readonly=True) as db:
        victim = db.location(2)  # the update of id 2: it has a previous version
        others = {i: db.get(i) for i in db if i != 2}
    size = 12 + len(PAYLOADS[2])
    for i in range(size):
        path = tmp_path / f"flip{i}"
        shutil.copytree(pristine, path)
        flip(path / "0.db", victim.position + i)
        with OurDB(path) as db:
            with pytest.raises(CorruptRecordError) as info:
                db.get_history(2, 5) if 6 <= i < 12 else db.get(2)
            err = info.value
            assert (err.record_id, err.offset) == (2, victim.position)
            assert err.file == str(path / "0.db")
            assert f"id 2) in {path / '0.db'} at offset {victim.position}" in str(err)
            assert {i: db.get(i) for i in db if i != 2} == others
        shutil.rmtree(path)


def test_damaged_middle_record_keeps_later_records(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with OurDB(path, CFG) as db:
        ids = [db.set(f"record {n}".encode() * 3) for n in range(50)]
        middle = db.location(ids[20])
    flip(path / "0.db", middle.position)  # the length field
    with OurDB(path) as db:
        with pytest.raises(CorruptRecordError):
            db.get(ids[20])
        assert [db.get(i) for i in ids[21:]] == [f"record {n}".encode() * 3 for n in range(21, 50)]
        assert db.get(db.set(b"still writable")) == b"still writable"


def test_lookup_ahead_of_a_lost_journal_keeps_records_and_ids(tmp_path: Path) -> None:
    """The table is written through after each sync: it outlives a journal that is gone."""
    db = OurDB(tmp_path / "live", CFG)
    try:
        first = [db.set(f"before the checkpoint {n}".encode()) for n in range(10)]
        db.checkpoint()
        later = [db.set(f"only in the journal {n}".encode()) for n in range(10)]
        crashed = tmp_path / "crashed"
        shutil.copytree(tmp_path / "live", crashed)
    finally:
        db.close()
    (crashed / "ourdb.journal").unlink()
    with OurDB(crashed) as db:
        assert any("names ids up to 20" in w for w in db.warnings), db.warnings
        assert [db.get(i) for i in first + later] == [
            *(f"before the checkpoint {n}".encode() for n in range(10)),
            *(f"only in the journal {n}".encode() for n in range(10)),
        ]
        assert db.set(b"new") == 21  # ids the table knows are never handed out again
    assert not (crashed / "quarantine").exists()  # nothing was cut


def test_damaged_journal_header_refuses(tmp_path: Path) -> None:
    db = OurDB(tmp_path / "live", CFG)
    try:
        db.set(b"kept")
        crashed = tmp_path / "crashed"
        shutil.copytree(tmp_path / "live", crashed)
    finally:
        db.close()
    flip(crashed / "ourdb.journal", 3)
    before = (crashed / "0.db").read_bytes()
    with pytest.raises(CorruptJournalError, match=r"ourdb\.journal is damaged at offset 0"):
        OurDB(crashed)
    assert (crashed / "0.db").read_bytes() == before


def test_missing_or_short_lookup_refuses(tmp_path: Path) -> None:
    path = tmp_path / "db"
    build(path)
    table = path / "lookup" / "data"
    data = table.read_bytes()
    table.write_bytes(data[:100])
    with pytest.raises(CorruptLookupError, match=r"lookup/data is damaged at offset 100"):
        OurDB(path)
    table.unlink()
    with pytest.raises(CorruptLookupError, match="the lookup table is missing"):
        OurDB(path, readonly=True)


def test_reader_of_a_live_database_still_refuses_real_damage(tmp_path: Path) -> None:
    """A reader retries while a writer holds the lock (its appends can look torn), but
    damage that stays is still refused."""
    path = tmp_path / "db"
    lock = str(path / "ourdb.lock")
    assert not writer_active(lock)
    with OurDB(path, CFG) as db:
        for n in range(5):
            db.set(f"record {n}".encode())
        assert writer_active(lock)
        flip(path / "ourdb.journal", 40)  # inside the first frame; whole frames follow
        with pytest.raises(CorruptJournalError, match="a whole frame follows"):
            OurDB(path, readonly=True)
        assert db.get(5) == b"record 4"  # the writer is unaffected
    assert not writer_active(lock)
