"""Directories written by the upstream implementation: read-only opens and foreign tails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.ourdb import OurDB, OurDBConfig
from core.ourdb.format import record_bytes
from tests.core.ourdb.conftest import cli, hexbytes, load_vectors

K3 = OurDBConfig(record_nr_max=100, keysize=3)


def vector(name: str) -> dict[str, Any]:
    (found,) = [v for v in load_vectors() if v["name"] == name]
    return found


def upstream_dir(path: Path, name: str, *, dump: bool = True) -> Path:
    """The byte layout an original leaves: data files and the sparse dump, nothing else."""
    v = vector(name)
    path.mkdir(parents=True)
    (path / "0.db").write_bytes(hexbytes(v["file_0_db"]))
    if dump:
        (path / "lookup_dump.db").mkdir()
        (path / "lookup_dump.db" / "data").write_bytes(hexbytes(v["sparse_dump"]))
        (path / "lookup_dump.db" / ".inc").write_text(v["inc_file"])
    return path


def listing(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_readonly_open_of_upstream_directory(tmp_path: Path) -> None:
    path = upstream_dir(tmp_path / "up", "incr_three_inserts_k3")
    before = listing(path)
    with OurDB(path, K3, readonly=True) as db:
        assert [db.get(i) for i in (1, 2, 3)] == [b"a", b"bb", b"ccc"]
        assert db.next_id() == 4
        assert db.warnings == []
    assert listing(path) == before  # read-only: not even a lock file or a checkpoint
    bare = upstream_dir(tmp_path / "bare", "incr_three_inserts_k3", dump=False)
    with OurDB(bare, K3, readonly=True) as db:
        assert list(db) == []  # an original that never saved its lookup names nothing


def test_cli_reads_upstream_directory(tmp_path: Path) -> None:
    path = upstream_dir(tmp_path / "up", "incr_set_hello_k6")  # the default layout
    info = cli("info", str(path), "--json")
    assert info.returncode == 0, info.stderr
    facts = json.loads(info.stdout)
    assert (facts["keysize"], facts["live_ids"], facts["next_id"]) == (6, 1, 2)
    verify = cli("verify", str(path))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "1 live ids, 1 records" in verify.stdout
    assert cli("get", str(path), "1").stdout.strip() == "hello"


def test_foreign_tail_keeps_whole_records_and_cuts_the_torn_one(tmp_path: Path) -> None:
    path = upstream_dir(tmp_path / "up", "incr_three_inserts_k3")
    unnamed = record_bytes(b"written, then the lookup was lost")
    deleted = bytes(12 + 7)  # a deleted record: zeros (spec section 3.2)
    after = record_bytes(b"after the deleted one")
    torn = record_bytes(b"torn by a crash in the middle")[:20]
    named_end = (path / "0.db").stat().st_size
    with open(path / "0.db", "ab") as fh:
        fh.write(unnamed + deleted + after + torn)
    kept_end = named_end + len(unnamed + deleted + after)
    size = kept_end + len(torn)
    with OurDB(path, K3, readonly=True) as db:
        (warning,) = db.warnings
        assert f"{path / '0.db'} has {len(torn)} bytes at offset {kept_end}" in warning
    assert (path / "0.db").stat().st_size == size  # read-only reports, never cuts
    with OurDB(path, K3) as db:
        assert [db.get(i) for i in (1, 2, 3)] == [b"a", b"bb", b"ccc"]
        new_id = db.set(b"appended after the import")
        assert new_id == 4
        assert db.location(new_id).position == kept_end
    data = (path / "0.db").read_bytes()
    assert data[named_end:kept_end] == unnamed + deleted + after
    (note,) = (path / "quarantine").glob("*.note")
    assert f"source: {path / '0.db'}\noffset: {kept_end}\nlength: {len(torn)}\n" in note.read_text()
    assert note.with_suffix(".bin").read_bytes() == torn
