"""Damage after a kill -9: a flipped byte is refused or survived, never a silent loss."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from core.ourdb import (
    CorruptDatabaseError,
    CorruptJournalError,
    CorruptLookupError,
    CorruptMetadataError,
    CorruptRecordError,
    OurDB,
    OurDBError,
)
from core.ourdb.aio import AsyncOurDB
from core.ourdb.journal import Journal
from core.ourdb.meta import read_meta
from core.ourdb.repair import check, repair
from tests.core.ourdb import conftest as ourdb
from tests.core.ourdb.child import payload
from tests.core.ourdb.test_crash import DEADLINE_S, acked_until_killed, check_acks, lines, spawn

FLIPS = 10


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return ourdb.cli(*args, timeout=120)


def killed_writer(path: Path, acks_wanted: int) -> dict[int, list[int]]:
    """Run the looping writer child until `acks_wanted` acks, then SIGKILL it."""
    acks: dict[int, list[int]] = {}
    for record_id, seed in acked_until_killed(spawn("loop", str(path), "0"), acks_wanted):
        acks.setdefault(record_id, []).append(seed)
    return acks


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, list[int]]]:
    """A database left by a kill -9 in the middle of its writes, with its acks."""
    path = tmp_path_factory.mktemp("crashed") / "db"
    acks = killed_writer(path, 150)
    return path, acks


@pytest.fixture(scope="module")
def crashed_big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, list[int]]]:
    """Like `crashed`, with enough data for several data files (256 kB each)."""
    path = tmp_path_factory.mktemp("crashed_big") / "db"
    acks = killed_writer(path, 600)
    return path, acks


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def snapshot(path: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and p.name != "ourdb.lock"
    }


def assert_one_line(exc: CorruptDatabaseError, file: Path) -> None:
    message = str(exc)
    assert "\n" not in message
    assert message.startswith(f"{file} is damaged at offset {exc.offset}:")
    assert exc.file == str(file)
    assert "heroagent ourdb verify" in message
    assert "heroagent ourdb repair" in message


def newest_acked(acks: dict[int, list[int]]) -> int:
    return max(acks)


def nonzero_end(path: Path) -> int:
    return len(path.read_bytes().rstrip(b"\x00"))


def offsets(rng: random.Random, end: int, start: int = 0) -> list[int]:
    return sorted(rng.sample(range(start, end), min(FLIPS, end - start)))


def open_or_refuse(
    path: Path, damaged: Path, acks: dict[int, list[int]]
) -> CorruptDatabaseError | None:
    """Open after the flip: refused with one line and no change, or every ack is there."""
    before = snapshot(path)
    try:
        db = OurDB(path)
    except CorruptDatabaseError as exc:
        assert_one_line(exc, damaged)
        assert snapshot(path) == before  # refused: nothing cut, nothing rewritten
        return exc
    with db:
        new_id = db.set(b"after the damage")
        assert new_id > newest_acked(acks)  # never a reused id
    check_acks(path, acks)
    return None


def repaired_keeps_acks(path: Path, acks: dict[int, list[int]]) -> None:
    report = repair(path)
    assert report.problems_after == []
    assert check(str(path)) == []
    check_acks(path, acks)
    with OurDB(path) as db:
        assert db.set(b"after repair") > newest_acked(acks)


def test_flipped_journal_byte(crashed: tuple[Path, dict[int, list[int]]], tmp_path: Path) -> None:
    pristine, acks = crashed
    journal = pristine / "ourdb.journal"
    rng = random.Random(12)
    refused = 0
    for offset in [0, *offsets(rng, nonzero_end(journal))]:
        path = tmp_path / f"j{offset}"
        shutil.copytree(pristine, path)
        flip(path / "ourdb.journal", offset)
        exc = open_or_refuse(path, path / "ourdb.journal", acks)
        if exc is not None:
            refused += 1
            assert isinstance(exc, CorruptJournalError)
            if refused == 1:  # the CLI, once: verify reports it, repair fixes it
                verify = cli("verify", str(path))
                assert verify.returncode == 1
                assert f"DAMAGED: {exc}" in verify.stdout
                fixed = cli("repair", str(path))
                assert fixed.returncode == 0, fixed.stdout + fixed.stderr
                assert "0 problems left" in fixed.stdout
                check_acks(path, acks)
            else:
                repaired_keeps_acks(path, acks)
        shutil.rmtree(path)
    assert refused >= 1


def test_flipped_meta_byte(crashed: tuple[Path, dict[int, list[int]]], tmp_path: Path) -> None:
    pristine, acks = crashed
    for offset in offsets(random.Random(3), (pristine / "ourdb.meta").stat().st_size):
        path = tmp_path / f"m{offset}"
        shutil.copytree(pristine, path)
        flip(path / "ourdb.meta", offset)
        exc = open_or_refuse(path, path / "ourdb.meta", acks)
        assert isinstance(exc, CorruptMetadataError)  # the CRC covers every byte
        assert exc.offset == 0
        with pytest.raises(CorruptMetadataError):
            OurDB(path, readonly=True)
        repaired_keeps_acks(path, acks)
        shutil.rmtree(path)


def readable_or_named(path: Path, acks: dict[int, list[int]]) -> set[int]:
    """Each acked id reads back in full or raises an error naming the file and offset.

    Returns:
        The ids that raised.
    """
    errors: dict[int, CorruptRecordError] = {}
    with OurDB(path, readonly=True) as db:
        for record_id, seeds in acks.items():
            try:
                history = db.get_history(record_id, 10_000)
            except CorruptRecordError as exc:
                errors[record_id] = exc
                continue
            assert all(payload(s) in history for s in seeds), record_id
    for error in errors.values():
        assert f"at offset {error.offset}" in str(error)
        assert error.file.startswith(str(path))
    return set(errors)


def test_flipped_data_byte(crashed_big: tuple[Path, dict[int, list[int]]], tmp_path: Path) -> None:
    pristine, acks = crashed_big
    # Records written since the last checkpoint are still in the journal, which heals
    # them on open; what the checkpoint covers stays damaged until a repair.
    meta = read_meta(str(pristine))
    assert meta is not None
    size = meta.cur_end if meta.cur_file == 0 else (pristine / "0.db").stat().st_size
    assert size > 1000
    damaged_seen = 0
    for offset in offsets(random.Random(5), size, start=1):
        path = tmp_path / f"d{offset}"
        shutil.copytree(pristine, path)
        data_file = path / "0.db"
        flip(data_file, offset)
        exc = open_or_refuse_data(path, data_file, acks)
        assert exc is None
        failed = readable_or_named(path, acks)
        problems = check(str(path))
        if failed:  # verify reports what a read hits
            damaged_seen += 1
            assert any(f"{data_file} at offset" in p for p in problems)
            if damaged_seen == 1:
                verify = cli("verify", str(path), "--json")
                assert verify.returncode == 1
                assert json.loads(verify.stdout)["damaged"] == problems
        report = repair(path)
        assert report.problems_after == []
        keep = {i: s for i, s in acks.items() if i not in failed}
        assert readable_or_named(path, keep) == set()  # repair kept every intact record
        shutil.rmtree(path)
    assert damaged_seen >= FLIPS // 2


def open_or_refuse_data(
    path: Path, damaged: Path, acks: dict[int, list[int]]
) -> CorruptDatabaseError | None:
    """A data flip may heal from the journal, refuse, or be reported when read."""
    before = snapshot(path)
    try:
        with OurDB(path) as db:
            assert db.set(b"after the damage") > newest_acked(acks)
    except CorruptDatabaseError as exc:
        refused = exc
    else:
        return None
    assert "\n" not in str(refused)
    assert snapshot(path) == before
    return refused


def test_flipped_lookup_byte(
    crashed_big: tuple[Path, dict[int, list[int]]], tmp_path: Path
) -> None:
    pristine, acks = crashed_big
    meta = read_meta(str(pristine))
    assert meta is not None
    assert meta.id_limit > 100
    keysize = meta.keysize
    # Entries the last checkpoint covers: the journal no longer rewrites them on open.
    used = offsets(random.Random(9), meta.id_limit * keysize, start=keysize)
    beyond = [(max(acks) + 50) * keysize + 3]  # an empty slot: a phantom id never given
    reported = 0
    for offset in used + beyond:
        path = tmp_path / f"l{offset}"
        shutil.copytree(pristine, path)
        flip(path / "lookup" / "data", offset)
        exc = open_or_refuse_data(path, path / "lookup" / "data", acks)
        if exc is not None:
            assert isinstance(exc, CorruptLookupError)
            reported += 1
        else:
            failed = readable_or_named(path, acks)
            problems = check(str(path))
            if failed or offset in beyond:
                assert problems, offset  # verify reports what a read would hit
                reported += 1
            with OurDB(path) as db:
                assert db.set(b"again") > max(newest_acked(acks), offset // keysize)
        report = repair(path)
        assert report.problems_after == []
        shutil.rmtree(path)
    assert reported >= FLIPS // 2


def test_genuine_torn_tail_still_recovers(tmp_path: Path) -> None:
    """What a kill -9 inside an append leaves: the record written, its frame cut short."""
    live = tmp_path / "live"
    db = OurDB(live)
    try:
        kept = [db.set(f"kept {n}".encode() * 20) for n in range(20)]
        crashed = tmp_path / "crashed"
        shutil.copytree(live, crashed)  # the state before the last commit
        journal_end = _journal_end(live)
        data_end = (live / "0.db").stat().st_size
        lost = db.set(b"never acknowledged " * 30)
        frame = (live / "ourdb.journal").read_bytes()[journal_end : _journal_end(live)]
        record = (live / "0.db").read_bytes()[data_end:]
    finally:
        db.close()
    with open(crashed / "0.db", "r+b") as fh:
        fh.seek(data_end)
        fh.write(record)
    with open(crashed / "ourdb.journal", "r+b") as fh:
        fh.seek(journal_end)
        fh.write(frame[: len(frame) // 2])  # zeros (preallocated) follow
    with OurDB(crashed) as db:
        assert [db.get(i) for i in kept] == [f"kept {n}".encode() * 20 for n in range(20)]
        assert lost not in list(db)
        assert any("torn journal tail" in w for w in db.warnings)
        assert any("unacknowledged tail" in w for w in db.warnings)
        assert db.set(b"next") == lost  # never acknowledged, so the id was never given
    notes = sorted((crashed / "quarantine").glob("*.note"))
    sources = [n.read_text().splitlines()[0] for n in notes]
    assert sorted(sources) == sorted(
        [f"source: {crashed / 'ourdb.journal'}", f"source: {crashed / '0.db'}"]
    )
    cut = [n.with_suffix(".bin").read_bytes() for n in notes if "0.db" in n.name]
    assert cut == [record]


def _journal_end(path: Path) -> int:
    journal = Journal(str(path), writable=False)
    for _ in journal.read()[1]:
        pass
    return journal.end


def test_cli_meta_damage_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with OurDB(path) as db:
        for n in range(30):
            db.set(f"job {n}".encode())
    flip(path / "ourdb.meta", 20)
    info = cli("info", str(path))
    assert info.returncode == 2
    assert "Traceback" not in info.stderr
    (line,) = info.stderr.splitlines()
    assert f"{path / 'ourdb.meta'} is damaged at offset 0" in line
    verify = cli("verify", str(path))
    assert verify.returncode == 1
    assert f"DAMAGED: {path / 'ourdb.meta'} is damaged at offset 0" in verify.stdout
    fixed = cli("repair", str(path))
    assert fixed.returncode == 0, fixed.stderr
    assert "30 ids kept" in fixed.stdout
    assert "quarantined:" in fixed.stdout
    ok = cli("verify", str(path))
    assert ok.returncode == 0, ok.stdout
    assert "30 live ids, 30 records" in ok.stdout
    with OurDB(path) as db:
        # The damaged byte is next_id's (31 ^ 0xFF): repair skips ids rather than reuse one.
        assert db.set(b"next") >= 31


def test_async_open_refuses_with_the_same_error(
    crashed: tuple[Path, dict[int, list[int]]], tmp_path: Path
) -> None:
    """What the job service sees: the open raises, one line, and the lock is free."""
    pristine, _ = crashed
    path = tmp_path / "db"
    shutil.copytree(pristine, path)
    flip(path / "ourdb.meta", 30)

    async def open_it() -> None:
        async with AsyncOurDB(path):
            pass

    with pytest.raises(CorruptMetadataError) as info:
        asyncio.run(open_it())
    assert "\n" not in str(info.value)
    assert isinstance(info.value, OurDBError)
    repair(path)  # takes the writer lock: the refused open released it


def test_repair_confirms_a_damaged_frame_from_the_data_files(tmp_path: Path) -> None:
    """A stale table (power loss) and a damaged frame: the data files still hold the
    records, so repair keeps them, checked against the history they continue."""
    live = tmp_path / "live"
    db = OurDB(live)
    try:
        for n in range(5):
            db.set(f"checkpointed {n}".encode())
        db.checkpoint()
        stale_table = (live / "lookup" / "data").read_bytes()
        frames = [_journal_end(live)]
        for n in range(5, 10):
            db.set(f"only in the journal {n}".encode())
            frames.append(_journal_end(live))
        db.set(b"an update of id 2", id=2)
        frames.append(_journal_end(live))
        db.set(b"the last one")
        crashed = tmp_path / "crashed"
        shutil.copytree(live, crashed)
    finally:
        db.close()
    (crashed / "lookup" / "data").write_bytes(stale_table)
    for frame_start in (frames[2], frames[5]):  # id 8's insert, id 2's update
        # Inside the record's payload: the op header still says which id went where.
        flip(crashed / "ourdb.journal", frame_start + 40)
    with pytest.raises(CorruptJournalError, match=f"at offset {frames[2]}"):
        OurDB(crashed)
    report = repair(crashed)
    assert report.problems_after == []
    assert len(report.journal_damage) == 2
    with OurDB(crashed) as db:
        assert [db.get(i) for i in (1, 3, 4, 5)] == [
            f"checkpointed {n}".encode() for n in (0, 2, 3, 4)
        ]
        assert [db.get(i) for i in range(6, 11)] == [
            f"only in the journal {n}".encode() for n in range(5, 10)
        ]
        assert db.get_history(2, 5) == [b"an update of id 2", b"checkpointed 1"]
        assert db.get(11) == b"the last one"
        assert db.set(b"new") == 12


def test_readers_next_to_a_running_writer_are_not_told_to_repair(tmp_path: Path) -> None:
    """`heroagent ourdb info` next to the engine: reads race with appends, never refuse."""
    path = tmp_path / "db"
    proc = spawn("loop", str(path), "0")
    try:
        acked: list[int] = []
        for parts in lines(proc):
            if parts[0] == "ack":
                acked.append(int(parts[1]))
                if len(acked) % 10 == 0:
                    with OurDB(path, readonly=True) as db:  # would raise on a false alarm
                        assert db.get(acked[-10]) is not None
                if len(acked) >= 300:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=DEADLINE_S)
