"""Crash and fault tests with real child processes: SIGKILL, file-size limit, full disk."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.ourdb import LockedError, OurDB
from tests.core.ourdb.child import payload

ROOT = Path(__file__).resolve().parents[3]
DEADLINE_S = 60.0


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.core.ourdb.child", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(proc: subprocess.Popen[str]) -> Iterator[list[str]]:
    assert proc.stdout is not None
    for line in proc.stdout:
        yield line.split()


def read_acks(out: str) -> dict[int, list[int]]:
    acks: dict[int, list[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "ack":
            acks.setdefault(int(parts[1]), []).append(int(parts[2]))
    return acks


def seed_of(data: bytes) -> int:
    return int(data.split(b"-")[1])


def check_acks(path: Path, acks: dict[int, list[int]], *, readonly: bool = False) -> None:
    """Every acknowledged version is in the id's history, in order.

    Versions newer than the last acknowledged one may exist: a write can be durable when
    the kill lands before its acknowledgement was printed.
    """
    with OurDB(path, readonly=readonly) as db:
        for record_id, seeds in acks.items():
            history = db.get_history(record_id, 10_000)
            newest = history.index(payload(seeds[-1]))
            assert all(seed_of(h) > seeds[-1] for h in history[:newest]), record_id
            wanted = [payload(s) for s in reversed(seeds)]
            it = iter(history)
            assert all(any(h == w for h in it) for w in wanted), record_id


def acked_until_killed(
    proc: subprocess.Popen[str], wanted: int, seconds: float | None = None
) -> list[tuple[int, int]]:
    """Read the child's acks until `wanted` of them, SIGKILL it; return every (id, seed) acked.

    Acks printed before the kill landed are in the list too, though they do not count
    towards `wanted`; `seconds`, if given, bounds the wait for the `wanted` ones.
    """
    got: list[tuple[int, int]] = []
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        for parts in lines(proc):
            assert deadline is None or time.monotonic() < deadline, "child too slow"
            if parts[0] == "ack":
                got.append((int(parts[1]), int(parts[2])))
                if len(got) >= wanted:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=DEADLINE_S)
    counted = len(got)
    got.extend((record_id, seed) for record_id, seeds in read_acks(out).items() for seed in seeds)
    assert counted >= wanted, err
    return got


def kill_rounds(tmp_path: Path, rounds: int, mode: str) -> None:
    path = tmp_path / "db"
    acks: dict[int, list[int]] = {}
    rng = random.Random(1234)
    seed = 0
    for _ in range(rounds):
        proc = spawn(mode, str(path), str(seed))
        for record_id, acked in acked_until_killed(proc, rng.randint(1, 60), DEADLINE_S):
            acks.setdefault(record_id, []).append(acked)
            seed = max(seed, acked + 1)
        seed += 100  # payloads of unacknowledged writes never collide with new ones
    assert sum(len(s) for s in acks.values()) >= rounds
    check_acks(path, acks)


def test_every_payload_names_its_own_seed() -> None:
    """The checks above read seeds back from payloads; each must be unique and readable."""
    seeds = range(20_000)
    assert [seed_of(payload(s)) for s in seeds] == list(seeds)
    assert len({len(payload(s)) for s in seeds}) > 100  # the lengths still vary


def test_sigkill_20_times_loses_no_acknowledged_write(tmp_path: Path) -> None:
    kill_rounds(tmp_path, 20, "loop")


def test_sigkill_async_group_commit(tmp_path: Path) -> None:
    kill_rounds(tmp_path, 5, "async-loop")


@pytest.mark.slow
def test_sigkill_200_times(tmp_path: Path) -> None:
    kill_rounds(tmp_path, 200, "loop")


@pytest.mark.parametrize("journal_limit", [64 * 2**20, 4096], ids=["journal-fills", "data-fills"])
def test_file_size_limit_mid_write(tmp_path: Path, journal_limit: int) -> None:
    path = tmp_path / "db"
    proc = spawn("fill", str(path), str(40_000), str(journal_limit))
    out, err = proc.communicate(timeout=DEADLINE_S)
    assert "failed" in out, err
    assert "refused" in out, out
    acks = read_acks(out)
    assert acks
    check_acks(path, acks)
    with OurDB(path) as db:
        new_id = db.set(b"after reopen")
        assert db.get(new_id) == b"after reopen"
        assert new_id > max(acks)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_mid_write(tiny_tmpfs: Path, tmp_path: Path) -> None:
    path = tiny_tmpfs / "db"
    proc = spawn("fill", str(path), str(2**40), str(64 * 2**20))
    out, err = proc.communicate(timeout=DEADLINE_S)
    assert "failed" in out, err
    assert "No space left" in out or "ENOSPC" in out, out
    assert "refused" in out
    acks = read_acks(out)
    assert acks
    check_acks(path, acks, readonly=True)  # the full disk cannot take a checkpoint
    # Give it room: move the database to a roomier disk and write again.
    roomy = tmp_path / "roomy"
    shutil.copytree(path, roomy)
    check_acks(roomy, acks)
    with OurDB(roomy) as db:
        assert db.get(db.set(b"room again")) == b"room again"


def test_10k_writes_then_reopen_without_close(tmp_path: Path) -> None:
    path = tmp_path / "db"
    proc = spawn("bulk", str(path), "10000", "none")
    out, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0, err
    assert out.split() == ["next_id", "10001"]
    with OurDB(path) as db:
        assert db.next_id() == 10001
        assert list(db) == list(range(1, 10001))
        for record_id in range(1, 10001):
            assert db.get(record_id) == payload(record_id - 1)


@pytest.mark.slow
def test_10k_durable_writes_then_reopen_without_close(tmp_path: Path) -> None:
    path = tmp_path / "db"
    proc = spawn("bulk", str(path), "10000", "always")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    with OurDB(path) as db:
        assert db.next_id() == 10001
        assert all(db.get(i) == payload(i - 1) for i in range(1, 10001))


def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with OurDB(path) as db:
        db.set(b"x")
        with pytest.raises(LockedError, match=f"pid {os.getpid()}") as info:
            OurDB(path)
        assert info.value.pid == os.getpid()
        proc = spawn("open", str(path))
        out, _ = proc.communicate(timeout=DEADLINE_S)
        assert out.split()[:2] == ["error", "LockedError"]
        assert f"pid {os.getpid()}" in out
        with OurDB(path, readonly=True) as reader:
            assert reader.get(1) == b"x"
    with OurDB(path) as db:  # released on close
        assert db.get(1) == b"x"
