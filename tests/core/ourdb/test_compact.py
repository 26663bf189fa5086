"""Compaction: live records and their histories survive a rewrite that gives back space."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.ourdb import LockedError, OurDB, OurDBConfig, RecordNotFoundError
from core.ourdb.compact import CompactError, compact, disk_bytes
from core.ourdb.repair import check
from tests.core.ourdb.conftest import cli


def _histories(db: OurDB) -> dict[int, list[bytes]]:
    return {i: db.get_history(i, 100) for i in db}


def _make(path: Path, config: OurDBConfig | None = None, ids: int = 600) -> dict[int, list[bytes]]:
    """A database whose even ids are deleted; the histories of the odd ones."""
    with OurDB(path, config) as db:
        payload = b"x" * 2_000
        if db.layout.incremental:
            made = db.set_many([payload + b"%d" % n for n in range(ids)])
        else:
            made = db.set_many([(payload + b"%d" % n, n) for n in range(ids)])
        for version in range(3):
            db.set_many([(b"v%d of %d" % (version, i), i) for i in made if i % 3 == version])
        db.delete_many([i for i in made if i % 2 == 0])
        return _histories(db)


@pytest.mark.parametrize(
    "config", [None, OurDBConfig(incremental=False, record_nr_max=10_000, keysize=6)]
)
def test_compact_keeps_every_live_version_and_gives_back_space(
    tmp_path: Path, config: OurDBConfig | None
) -> None:
    path = tmp_path / "db"
    before = _make(path, config)
    with OurDB(path, readonly=True) as db:
        next_id = db.writer_state.next_id
        data_before = sum(db.data_files().values())

    report = compact(str(path))

    assert report.live_ids == len(before) == 300
    assert report.records == sum(len(h) for h in before.values())
    assert report.bytes_after < report.bytes_before
    assert check(str(path)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]
    with OurDB(path, config) as db:
        assert _histories(db) == before
        assert sum(db.data_files().values()) < data_before / 2 + 50_000
        with pytest.raises(RecordNotFoundError):
            db.get(2)
        if db.layout.incremental:
            # Ids of records deleted before the rewrite are never handed out again.
            assert db.writer_state.next_id == next_id
            assert db.set(b"new") == next_id


def test_compact_refuses_a_database_in_use(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _make(path, ids=10)
    with OurDB(path) as db:
        with pytest.raises(LockedError):
            compact(str(path))
        assert len(list(db)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]


def test_compact_refuses_a_damaged_database(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _make(path, ids=10)
    data = bytearray((path / "0.db").read_bytes())
    with OurDB(path, readonly=True) as db:
        loc = db.location(1)
    data[loc.position + 12] ^= 0xFF
    (path / "0.db").write_bytes(bytes(data))
    size = disk_bytes(str(path))
    with pytest.raises(CompactError, match="ourdb repair"):
        compact(str(path))
    assert disk_bytes(str(path)) == size


def test_compact_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _make(path, ids=50)
    done = cli("compact", str(path))
    assert done.returncode == 0, done.stderr
    assert "kept 25 live ids" in done.stdout
    verified = cli("verify", str(path))
    assert verified.returncode == 0, verified.stdout
    assert "25 live ids" in verified.stdout
    missing = cli("compact", str(tmp_path / "nothing"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
