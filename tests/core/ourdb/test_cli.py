"""`heroagent ourdb ...` through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.ourdb import OurDB, OurDBConfig
from tests.core.ourdb.conftest import cli

ROOT = Path(__file__).resolve().parents[3]


def make(path: Path) -> None:
    with OurDB(path, OurDBConfig(record_nr_max=100, keysize=6)) as db:
        db.set(b"hello")
        db.set(b"world", id=1)
        db.set(b'{"job": 2}')


def test_info_get_history_dump(tmp_path: Path) -> None:
    path = tmp_path / "db"
    make(path)
    info = json.loads(cli("info", str(path), "--json").stdout)
    assert (info["keysize"], info["live_ids"], info["next_id"]) == (6, 2, 3)
    assert cli("get", str(path), "2").stdout.strip() == '{"job": 2}'
    out = cli("history", str(path), "1", "--depth", "5", "--json").stdout
    assert json.loads(out) == ["world", "hello"]
    rows = [json.loads(line) for line in cli("dump", str(path), "--json").stdout.splitlines()]
    assert [(r["id"], r["offset"], r["data"]) for r in rows] == [
        (1, 18, "world"),
        (2, 35, '{"job": 2}'),
    ]
    missing = cli("get", str(path), "9")
    assert missing.returncode == 1
    assert "record not found: id 9" in missing.stderr


def test_verify_clean_and_damaged(tmp_path: Path) -> None:
    path = tmp_path / "db"
    make(path)
    ok = cli("verify", str(path))
    assert ok.returncode == 0, ok.stderr
    assert "2 live ids, 3 records" in ok.stdout
    data = bytearray((path / "0.db").read_bytes())
    data[1 + 12] ^= 0xFF  # payload of "hello", an older version of id 1
    (path / "0.db").write_bytes(bytes(data))
    bad = cli("verify", str(path), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert len(report["damaged"]) == 1
    assert "id 1" in report["damaged"][0]
    assert "at offset 1" in report["damaged"][0]


def test_verify_reports_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "db"
    make(path)
    with open(path / "0.db", "r+b") as fh:
        fh.truncate(40)
    bad = cli("verify", str(path))
    assert bad.returncode == 1
    assert "torn record" in bad.stdout
    assert (path / "0.db").stat().st_size == 40  # verify never writes


def test_cli_import_leaves_textual_out() -> None:
    code = "import sys, heroagent_tui.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_bench_quick_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ourdb", "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for figure in ("durable single writes", "batched writes", "random reads", "open"):
        assert figure in out.stdout
    assert "OurDB/SQLite" in out.stdout
