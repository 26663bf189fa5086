"""The checkpoint file `ourdb.meta` and the spec-format exports (`.inc`, sparse dump)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from core.ourdb.errors import CorruptMetadataError
from core.ourdb.files import fsync_dir, write_all
from core.ourdb.format import crc32

META_NAME = "ourdb.meta"
LOCK_NAME = "ourdb.lock"
TABLE_DIR = "lookup"
DUMP_DIR = "lookup_dump.db"
_MAGIC = b"OURDBMTA"
# magic, version, keysize, incremental, record_nr_max, next_id, id_limit, cur_file,
# cur_end, generation
_META = struct.Struct("<8sHBBQQQIQQ")
VERSION = 1


@dataclass
class Meta:
    """State as of the last checkpoint; the journal of `generation` continues from here.

    Attributes:
        keysize: bytes per lookup entry.
        incremental: id allocation mode.
        record_nr_max: number of lookup slots.
        next_id: next id to allocate (incremental mode).
        id_limit: every id ever set is below this (bounds iteration and dumps).
        cur_file: data file that receives appends.
        cur_end: durable end of `cur_file`; bytes after it are an unacknowledged tail.
        generation: journal generation not yet folded into the table.
    """

    keysize: int
    incremental: bool
    record_nr_max: int
    next_id: int
    id_limit: int
    cur_file: int
    cur_end: int
    generation: int

    def encode(self) -> bytes:
        """Bytes of the meta file, CRC included."""
        body = _META.pack(
            _MAGIC,
            VERSION,
            self.keysize,
            int(self.incremental),
            self.record_nr_max,
            self.next_id,
            self.id_limit,
            self.cur_file,
            self.cur_end,
            self.generation,
        )
        return body + struct.pack("<I", crc32(body))

    @classmethod
    def decode(cls, data: bytes, path: str) -> Meta:
        """Parse a meta file; CorruptMetadataError when it is damaged."""
        if len(data) != _META.size + 4:
            raise CorruptMetadataError(f"{path}: {len(data)} bytes, expected {_META.size + 4}")
        (stored,) = struct.unpack_from("<I", data, _META.size)
        if crc32(data[: _META.size]) != stored:
            raise CorruptMetadataError(f"{path}: CRC mismatch")
        fields = _META.unpack_from(data)
        if fields[0] != _MAGIC or fields[1] != VERSION:
            raise CorruptMetadataError(f"{path}: not an OurDB meta file of version {VERSION}")
        return cls(fields[2], bool(fields[3]), *fields[4:])


def atomic_write(path: str, data: bytes, *, sync: bool) -> None:
    """Replace `path` with `data` via temp file, fsync and rename (spec §11 #5, #6)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data, 0)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(os.path.dirname(path))


def read_meta(directory: str) -> Meta | None:
    """The meta file, or None when the directory has none."""
    path = os.path.join(directory, META_NAME)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    return Meta.decode(data, path)


def write_meta(directory: str, meta: Meta, *, sync: bool) -> None:
    """Atomically replace the meta file."""
    atomic_write(os.path.join(directory, META_NAME), meta.encode(), sync=sync)


def parse_inc(raw: bytes, path: str) -> int:
    """Parse an `.inc` counter; garbage is an error (V read 0, Go panicked)."""
    text = raw.decode("ascii", errors="replace").strip()
    if not text.isdigit():
        raise CorruptMetadataError(f"{path}: next id {text!r} is not a decimal number")
    return int(text)


def write_exports(directory: str, sparse: bytes, next_id: int | None, *, sync: bool) -> None:
    """Write the spec's `lookup_dump.db/{data,.inc}` and `lookup/.inc`.

    These let a reader of the original format find the records; OurDB itself reads
    them only when a directory has no meta file.
    """
    dump_dir = os.path.join(directory, DUMP_DIR)
    os.makedirs(dump_dir, exist_ok=True)
    atomic_write(os.path.join(dump_dir, "data"), sparse, sync=sync)
    if next_id is not None:
        inc = str(next_id).encode()
        atomic_write(os.path.join(dump_dir, ".inc"), inc, sync=sync)
        atomic_write(os.path.join(directory, TABLE_DIR, ".inc"), inc, sync=sync)


def read_dump(directory: str) -> tuple[bytes, int | None] | None:
    """The sparse dump and `.inc` of `lookup_dump.db/`, or None when absent."""
    dump_dir = os.path.join(directory, DUMP_DIR)
    data_path = os.path.join(dump_dir, "data")
    if not os.path.exists(data_path):
        return None
    with open(data_path, "rb") as fh:
        sparse = fh.read()
    inc_path = os.path.join(dump_dir, ".inc")
    next_id = None
    if os.path.exists(inc_path):
        with open(inc_path, "rb") as fh:
            next_id = parse_inc(fh.read(), inc_path)
    return sparse, next_id
