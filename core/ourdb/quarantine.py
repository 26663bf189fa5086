"""`<db>/quarantine/`: every byte recovery or repair removes is copied here first."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator

from core.ourdb.files import fsync_dir, write_all

QUARANTINE_DIR = "quarantine"


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def quarantine(db_dir: str, source: str, offset: int, data: bytes, reason: str) -> str:
    """Keep `data`, taken from `source` at `offset`, before the caller removes it."""
    return _keep(db_dir, source, offset, [data], reason)


def quarantine_range(db_dir: str, source: str, start: int, end: int, reason: str) -> str:
    """Keep bytes `start..end` of the file `source` (read in pieces: tails can be large)."""
    return _keep(db_dir, source, start, _pieces(source, start, end), reason)


def _pieces(path: str, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            piece = fh.read(min(left, 1 << 20))
            if not piece:
                return
            left -= len(piece)
            yield piece


def _keep(db_dir: str, source: str, offset: int, chunks: Iterable[bytes], reason: str) -> str:
    """Write the quarantine copy and its note.

    Writes `<stamp>-<name>-<offset>.bin` with the bytes and a `.note` next to it that
    says where they came from and why, both fsynced with their directory, so that a crash
    right after the cut never loses the only copy.

    Returns:
        The path of the `.bin` file.
    """
    directory = os.path.join(db_dir, QUARANTINE_DIR)
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(source)
    base = f"{_stamp()}-{name}-{offset}"
    n = 0
    while True:
        stem = base if n == 0 else f"{base}-{n}"
        try:
            fd = os.open(
                os.path.join(directory, stem + ".bin"), os.O_WRONLY | os.O_CREAT | os.O_EXCL
            )
            break
        except FileExistsError:
            n += 1  # two cuts in the same microsecond: never overwrite an earlier copy
    length = 0
    try:
        for piece in chunks:
            write_all(fd, piece, length)
            length += len(piece)
        os.fsync(fd)
    finally:
        os.close(fd)
    note = (
        f"source: {source}\n"
        f"offset: {offset}\n"
        f"length: {length}\n"
        f"reason: {' '.join(reason.split())}\n"
        f"time: {_stamp()}\n"
    )
    fd = os.open(os.path.join(directory, stem + ".note"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        write_all(fd, note.encode(), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(directory)
    fsync_dir(db_dir)
    return os.path.join(directory, stem + ".bin")


def notes(db_dir: str) -> list[str]:
    """Paths of the quarantine notes, oldest first (names start with a UTC stamp)."""
    directory = os.path.join(db_dir, QUARANTINE_DIR)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return [os.path.join(directory, n) for n in sorted(names) if n.endswith(".note")]
