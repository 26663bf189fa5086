"""The checkpoint file `ourdb.meta` and the spec-format exports (`.inc`, sparse dump)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from core.ourdb.errors import CorruptMetadataError
from core.ourdb.files import fsync_dir, write_all
from core.ourdb.format import KEYSIZES, crc32

META_NAME = "ourdb.meta"
LOCK_NAME = "ourdb.lock"
TABLE_DIR = "lookup"
DUMP_DIR = "lookup_dump.db"
_MAGIC = b"OURDBMTA"
# magic, version, keysize, incremental, record_nr_max, next_id, id_limit, cur_file,
# cur_end, generation
_META = struct.Struct("<8sHBBQQQIQQ")
VERSION = 1
META_LEN = _META.size + 4


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
        """Parse a meta file; CorruptMetadataError (file and offset) when it is damaged."""
        if len(data) != META_LEN:
            raise CorruptMetadataError(
                path, min(len(data), META_LEN), f"{len(data)} bytes, expected {META_LEN}"
            )
        (stored,) = struct.unpack_from("<I", data, _META.size)
        if crc32(data[: _META.size]) != stored:
            # The CRC covers the whole file, so the damaged byte cannot be told apart.
            raise CorruptMetadataError(path, 0, f"checksum mismatch over bytes 0..{_META.size}")
        fields = _META.unpack_from(data)
        if fields[0] != _MAGIC or fields[1] != VERSION:
            raise CorruptMetadataError(path, 0, f"not an OurDB meta file of version {VERSION}")
        return cls(fields[2], bool(fields[3]), *fields[4:])

    @classmethod
    def salvage(cls, data: bytes, table_size: int) -> Meta | None:
        """For repair: the fields of a meta file whose CRC fails, or None.

        One damaged byte is undone where the other fields tell: keysize and
        record_nr_max must multiply to the lookup table's size, and the mode byte is 0
        or 1 (or its inverse, a flipped byte). Counters are left for repair to check.
        """
        if len(data) != META_LEN:
            return None
        fields = list(_META.unpack_from(data))
        keysize, mode, slots = fields[2], fields[3], fields[4]
        if keysize * slots != table_size:
            if keysize in KEYSIZES and table_size % keysize == 0:
                slots = table_size // keysize
            elif slots > 0 and table_size % slots == 0 and table_size // slots in KEYSIZES:
                keysize = table_size // slots
            else:
                return None
        if keysize not in KEYSIZES:
            return None
        modes = {0: False, 1: True, 0xFF: False, 0xFE: True}
        if mode not in modes:
            if mode.bit_count() == 1:
                mode = 0
            elif (mode ^ 1).bit_count() == 1:
                mode = 1
            else:
                return None
        return cls(keysize, modes[mode], slots, *fields[5:])


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
        raise CorruptMetadataError(path, 0, f"next id {text!r} is not a decimal number")
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
