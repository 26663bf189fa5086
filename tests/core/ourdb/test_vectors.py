"""Every vector of ourdb_vectors.py is reproduced byte for byte on real files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.ourdb import DatabaseFullError, InvalidIdError, OurDB, OurDBConfig
from core.ourdb.format import (
    HEADER_LEN,
    MAX_FILE_NR,
    MAX_PAYLOAD,
    Location,
    choose_keysize,
    crc32,
    encode_entry,
    entry_fits,
    location_bytes,
)
from tests.core.ourdb.conftest import hexbytes, load_vectors

VECTORS = load_vectors()


def by_prefix(prefix: str) -> list[dict[str, Any]]:
    found = [v for v in VECTORS if v["name"].startswith(prefix)]
    assert found, prefix
    return found


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def read(path: Path) -> bytes:
    return path.read_bytes()


def table_bytes(db: Path, ids_upto: int, keysize: int) -> bytes:
    return read(db / "lookup" / "data")[: (ids_upto + 1) * keysize]


def test_vector_file_has_35_vectors() -> None:
    assert len(VECTORS) == 35
    known = ("crc32_", "keysize_", "location_", "fresh_", "incr_", "kv_", "limits")
    assert all(v["name"].startswith(known) for v in VECTORS)


@pytest.mark.parametrize("v", by_prefix("crc32_"), ids=ids(by_prefix("crc32_")))
def test_crc(v: dict[str, Any]) -> None:
    payload = hexbytes(v["payload"])
    assert f"{crc32(payload):08x}" == v["crc_hex"]
    assert crc32(payload).to_bytes(4, "little") == hexbytes(v["crc_le"])


@pytest.mark.parametrize("v", by_prefix("keysize_"), ids=ids(by_prefix("keysize_")))
def test_keysize(v: dict[str, Any]) -> None:
    assert choose_keysize(v["record_nr_max"], v["record_size_max"]) == v["keysize"]


@pytest.mark.parametrize("v", by_prefix("location_"), ids=ids(by_prefix("location_")))
def test_location(v: dict[str, Any]) -> None:
    loc = Location(v["file_nr"], v["position"])
    assert location_bytes(loc) == hexbytes(v["location6"])
    for ks in (2, 3, 4, 6):
        assert entry_fits(loc, ks) == v[f"fits_k{ks}"]
        # What the originals store is the last keysize bytes; OurDB refuses the misfits.
        assert location_bytes(loc)[6 - ks :] == hexbytes(v[f"entry_k{ks}"])
        if v[f"fits_k{ks}"]:
            assert encode_entry(loc, ks) == hexbytes(v[f"entry_k{ks}"])
        else:
            with pytest.raises(ValueError, match="does not fit"):
                encode_entry(loc, ks)


def test_fresh_data_file(db_path: Path) -> None:
    (v,) = by_prefix("fresh_data_file")
    with OurDB(db_path, OurDBConfig(record_nr_max=100)):
        assert read(db_path / "0.db") == hexbytes(v["file_0_db"])


@pytest.mark.parametrize("v", by_prefix("incr_set_hello"), ids=ids(by_prefix("incr_set_hello")))
def test_incremental_set(db_path: Path, v: dict[str, Any]) -> None:
    ks = int(v["name"][-1])
    with OurDB(db_path, OurDBConfig(record_nr_max=100, keysize=ks)) as db:
        assert db.set(b"hello") == v["returned_id"]
        assert db.next_id() == v["next_id"]
    assert read(db_path / "0.db") == hexbytes(v["file_0_db"])
    assert table_bytes(db_path, 2, ks) == hexbytes(v["lookup_table_first_bytes"])
    assert table_bytes(db_path, 1, ks)[ks:] == hexbytes(v["lookup_entry_id1"])
    assert read(db_path / "lookup_dump.db" / "data") == hexbytes(v["sparse_dump"])
    assert read(db_path / "lookup_dump.db" / ".inc").decode() == v["inc_file"]
    assert read(db_path / "lookup" / ".inc").decode() == v["inc_file"]


@pytest.mark.parametrize("v", by_prefix("incr_update"), ids=ids(by_prefix("incr_update")))
def test_update_and_history(db_path: Path, v: dict[str, Any]) -> None:
    ks = int(v["name"][-1])
    with OurDB(db_path, OurDBConfig(record_nr_max=100, keysize=ks)) as db:
        db.set(b"hello")
        assert db.set(b"world", id=1) == 1
        assert list(db.location(1)) == v["location_id1"]
        # History works for every keysize: the originals' quirk is fixed.
        assert [h.decode() for h in db.get_history(1, 5)] == v["history_depth5_intended"]
        assert db.get_history(1, 1) == [v["history_depth5_originals"][0].encode()]
    assert read(db_path / "0.db") == hexbytes(v["file_0_db"])
    assert table_bytes(db_path, 2, ks) == hexbytes(v["lookup_table_first_bytes"])
    assert read(db_path / "lookup_dump.db" / "data") == hexbytes(v["sparse_dump"])
    assert read(db_path / "lookup_dump.db" / ".inc").decode() == v["inc_file"]


def test_delete_after_update(db_path: Path) -> None:
    (v,) = by_prefix("incr_delete_after_update_k6")
    with OurDB(db_path, OurDBConfig(record_nr_max=100, keysize=6)) as db:
        db.set(b"hello")
        db.set(b"world", id=1)
        db.delete(1, erase_history=False)  # the originals' delete, for the vector
    assert read(db_path / "0.db") == hexbytes(v["file_0_db"])
    assert table_bytes(db_path, 2, 6) == hexbytes(v["lookup_table_first_bytes"])
    assert read(db_path / "lookup_dump.db" / "data") == hexbytes(v["sparse_dump"])
    assert read(db_path / "lookup_dump.db" / ".inc").decode() == v["inc_file"]


def test_delete_erases_history_by_default(db_path: Path) -> None:
    with OurDB(db_path, OurDBConfig(record_nr_max=100, keysize=6)) as db:
        db.set(b"hello")
        db.set(b"world", id=1)
        db.delete(1)
    assert read(db_path / "0.db") == bytes(35)


def test_three_inserts(db_path: Path) -> None:
    (v,) = by_prefix("incr_three_inserts_k3")
    with OurDB(db_path, OurDBConfig(record_nr_max=100, keysize=3)) as db:
        assert [db.set(p) for p in (b"a", b"bb", b"ccc")] == [1, 2, 3]
        assert {str(i): list(db.location(i)) for i in (1, 2, 3)} == v["locations"]
    assert read(db_path / "0.db") == hexbytes(v["file_0_db"])
    assert table_bytes(db_path, 4, 3) == hexbytes(v["lookup_table_first_bytes"])
    assert read(db_path / "lookup_dump.db" / "data") == hexbytes(v["sparse_dump"])
    assert read(db_path / "lookup_dump.db" / ".inc").decode() == v["inc_file"]


def test_key_value_mode(db_path: Path) -> None:
    (v,) = by_prefix("kv_ids_0_and_5_k2")
    cfg = OurDBConfig(record_nr_max=10, keysize=2, incremental=False)
    with OurDB(db_path, cfg) as db:
        assert db.set(b"a", id=0) == 0
        assert db.set(b"bc", id=5) == 5
        with pytest.raises(InvalidIdError, match="incremental mode is not enabled"):
            db.next_id()
    assert read(db_path / "0.db") == hexbytes(v["file_0_db"])
    assert read(db_path / "lookup" / "data") == hexbytes(v["lookup_table"])
    assert read(db_path / "lookup_dump.db" / "data") == hexbytes(v["sparse_dump"])
    assert v["inc_file"] is None
    assert not (db_path / "lookup_dump.db" / ".inc").exists()


def test_empty_payload(db_path: Path) -> None:
    (v,) = by_prefix("incr_empty_payload_k4")
    with OurDB(db_path, OurDBConfig(record_nr_max=10, keysize=4)) as db:
        assert db.set(b"") == 1
        assert db.get(1) == b""
    assert read(db_path / "0.db") == hexbytes(v["file_0_db"])
    assert table_bytes(db_path, 1, 4) == hexbytes(v["lookup_table_first_bytes"])


def test_rollover(db_path: Path) -> None:
    (v,) = by_prefix("kv_rollover_file_size10_k6")
    cfg = OurDBConfig(record_nr_max=16777215, keysize=6, incremental=False, file_size=10)
    with OurDB(db_path, cfg) as db:
        db.set(b"Test data", id=1)
        db.set(b"Test data 2222", id=2)
        db.set(b"x", id=1)
        assert [h.decode() for h in db.get_history(1, 5)] == v["history_id1"]
    for n in (0, 1, 2):
        assert read(db_path / f"{n}.db") == hexbytes(v[f"file_{n}_db"])
    assert table_bytes(db_path, 2, 6) == hexbytes(v["lookup_table_first_bytes"])
    assert read(db_path / "lookup_dump.db" / "data") == hexbytes(v["sparse_dump"])
    # Weakness #2 fixed: reopening and writing never truncates 1.db.
    with OurDB(db_path, cfg) as db:
        db.set(b"four", id=4)
        assert db.get(2) == b"Test data 2222"
        assert db.location(4).file_nr == 3
    assert read(db_path / "1.db") == hexbytes(v["file_1_db"])


def test_limits(db_path: Path) -> None:
    (v,) = by_prefix("limits")
    assert v["max_payload_bytes"] == MAX_PAYLOAD
    assert v["header_len"] == HEADER_LEN
    assert v["max_file_nr"] == MAX_FILE_NR
    cfg = OurDBConfig()
    assert cfg.record_nr_max == v["default_record_nr_max"]
    assert cfg.record_size_max == v["default_record_size_max"]
    assert cfg.file_size == v["default_file_size"]
    assert cfg.resolved_keysize() == v["default_keysize"]
    assert cfg.record_nr_max * cfg.resolved_keysize() == v["default_lookup_table_bytes"]
    with OurDB(db_path / "inc", OurDBConfig(record_nr_max=10)) as db:
        got = [db.set(b"p") for _ in range(9)]
        assert got[0] == v["incremental_first_id"]
        assert got[-1] == v["incremental_last_id_for_record_nr_max_10"]
        assert db.location(got[0]).position == v["first_record_position"]
        with pytest.raises(DatabaseFullError, match="lookup table is full"):
            db.set(b"p")
    lo, hi = v["kv_id_range_for_record_nr_max_10"]
    with OurDB(db_path / "kv", OurDBConfig(record_nr_max=10, incremental=False)) as db:
        db.set(b"lo", id=lo)
        db.set(b"hi", id=hi)
        with pytest.raises(InvalidIdError, match="out of range"):
            db.set(b"x", id=hi + 1)
