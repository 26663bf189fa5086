"""The write-ahead journal `ourdb.journal`: CRC-framed batches of sets and deletes."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.ourdb.errors import CorruptMetadataError
from core.ourdb.files import write_all
from core.ourdb.format import HEADER_LEN, Location, crc32

log = logging.getLogger("core.ourdb")

JOURNAL_NAME = "ourdb.journal"
_MAGIC = b"OURDBJNL"
_FILE_HEADER = struct.Struct("<8sII")  # magic, format version, generation
_FILE_HEADER_LEN = _FILE_HEADER.size + 4  # plus CRC of the above
_FRAME = struct.Struct("<II")  # body length, CRC-32 of body
_SET = struct.Struct("<cIHI")  # 'S', id, file_nr, position; then the record bytes
_DEL = struct.Struct("<cIH")  # 'D', id, region count; then the regions
_REGION = struct.Struct("<HIH")  # file_nr, position, payload length
_RUN = struct.Struct("<cIHII")  # 'R', first id, file_nr, start, blob length; then the blob
_RECORD_LEN = struct.Struct("<H")
VERSION = 1
_CHUNK = 4 << 20


@dataclass(slots=True)
class SetOp:
    """A record appended at `loc` that becomes the newest version of `record_id`."""

    record_id: int
    loc: Location
    record: bytes


@dataclass(slots=True)
class DeleteOp:
    """`record_id` removed; each region (location, payload length) is zeroed."""

    record_id: int
    regions: list[tuple[Location, int]] = field(default_factory=list)


@dataclass(slots=True)
class InsertRun:
    """New ids `first_id`, `first_id + 1`, ... stored back to back from `start` of a file.

    Batches of inserts are the common case; one op per batch keeps both the journal and
    the apply step free of per-record objects.
    """

    first_id: int
    file_nr: int
    start: int
    positions: list[int]
    blob: bytes

    def locations(self) -> Iterator[tuple[int, Location]]:
        """(id, location) of every record in the run."""
        for n, position in enumerate(self.positions):
            yield self.first_id + n, Location(self.file_nr, position)


def run_positions(blob: bytes, start: int) -> list[int]:
    """Record start positions of a blob of back-to-back records written at `start`."""
    positions = []
    off = 0
    while off < len(blob):
        positions.append(start + off)
        (length,) = _RECORD_LEN.unpack_from(blob, off)
        off += HEADER_LEN + length
    return positions


Op = SetOp | DeleteOp | InsertRun


def encode_ops(ops: list[Op]) -> bytes:
    """One journal frame holding `ops`; replaying it is idempotent."""
    parts: list[bytes] = []
    for op in ops:
        if isinstance(op, InsertRun):
            parts.append(_RUN.pack(b"R", op.first_id, op.file_nr, op.start, len(op.blob)))
            parts.append(op.blob)
        elif isinstance(op, SetOp):
            parts.append(_SET.pack(b"S", op.record_id, op.loc.file_nr, op.loc.position))
            parts.append(op.record)
        else:
            parts.append(_DEL.pack(b"D", op.record_id, len(op.regions)))
            for loc, length in op.regions:
                parts.append(_REGION.pack(loc.file_nr, loc.position, length))
    body = b"".join(parts)
    return _FRAME.pack(len(body), crc32(body)) + body


def decode_ops(body: bytes) -> list[Op]:
    """Inverse of `encode_ops` for one frame body (CRC already checked)."""
    ops: list[Op] = []
    off = 0
    while off < len(body):
        kind = body[off : off + 1]
        if kind == b"R":
            _, first_id, file_nr, start, length = _RUN.unpack_from(body, off)
            off += _RUN.size
            blob = body[off : off + length]
            off += length
            ops.append(InsertRun(first_id, file_nr, start, run_positions(blob, start), blob))
        elif kind == b"S":
            _, record_id, file_nr, position = _SET.unpack_from(body, off)
            off += _SET.size
            (length,) = _RECORD_LEN.unpack_from(body, off)
            end = off + HEADER_LEN + length
            ops.append(SetOp(record_id, Location(file_nr, position), body[off:end]))
            off = end
        elif kind == b"D":
            _, record_id, count = _DEL.unpack_from(body, off)
            off += _DEL.size
            regions = []
            for _ in range(count):
                file_nr, position, length = _REGION.unpack_from(body, off)
                regions.append((Location(file_nr, position), length))
                off += _REGION.size
            ops.append(DeleteOp(record_id, regions))
        else:
            raise CorruptMetadataError(f"unknown journal op {kind!r} at body offset {off}")
    return ops


class Journal:
    """Append-only journal; only the current generation's frames are replayed."""

    def __init__(self, directory: str, *, writable: bool, chunk: int = _CHUNK) -> None:
        self.path = os.path.join(directory, JOURNAL_NAME)
        self.writable = writable
        self.generation = 0
        self.end = 0
        self.allocated = 0
        self._chunk = chunk
        self._data = b""
        self._fd = -1
        if writable:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def read(self) -> tuple[int, Iterator[tuple[int, bytes]], int]:
        """Generation, frames as (offset, body), and the file size.

        After the iterator is exhausted, `self.end` is the end of the last whole frame.
        A header that is missing or damaged gives generation 0 (nothing to replay).
        """
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            data = b""
        self._data = data
        self.allocated = len(data)
        if len(data) < _FILE_HEADER_LEN:
            self.end = 0
            return 0, iter(()), len(data)
        magic, version, generation = _FILE_HEADER.unpack_from(data)
        (stored_crc,) = struct.unpack_from("<I", data, _FILE_HEADER.size)
        if magic != _MAGIC or crc32(data[: _FILE_HEADER.size]) != stored_crc:
            log.warning("journal %s has a damaged header; ignoring it", self.path)
            self.end = 0
            return 0, iter(()), len(data)
        if version != VERSION:
            raise CorruptMetadataError(f"journal {self.path} has unknown version {version}")
        self.generation = generation
        self.end = _FILE_HEADER_LEN
        return generation, self._frames(data), len(data)

    def _frames(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        off = _FILE_HEADER_LEN
        while off + _FRAME.size <= len(data):
            length, crc = _FRAME.unpack_from(data, off)
            if length == 0:
                return  # preallocated zeros: no frame is ever empty
            start = off + _FRAME.size
            body = data[start : start + length]
            if len(body) != length or crc32(body) != crc:
                return
            yield off, body
            off = start + length
            self.end = off

    def tail_bytes(self) -> int:
        """Bytes after the last whole frame, unless they are only preallocated zeros."""
        rest = self._data[self.end :]
        self._data = b""
        return len(rest) if rest.strip(b"\x00") else 0

    def truncate_tail(self) -> None:
        """Cut everything after the last whole frame (a torn or unacknowledged tail)."""
        os.ftruncate(self._fd, self.end)
        self.allocated = self.end

    def reset(self, generation: int, *, sync: bool, preallocate: bool = True) -> None:
        """Empty the journal and start `generation`."""
        os.ftruncate(self._fd, 0)
        header = _FILE_HEADER.pack(_MAGIC, VERSION, generation)
        write_all(self._fd, header + struct.pack("<I", crc32(header)), 0)
        self.generation = generation
        self.end = self.allocated = _FILE_HEADER_LEN
        if preallocate:
            self._extend(self.end, sync=sync)
        elif sync:
            os.fsync(self._fd)

    def _extend(self, need: int, *, sync: bool) -> None:
        """Grow the file with written zeros, synced once.

        Frames then overwrite blocks that are already allocated and counted in the file
        size, so the fdatasync of a commit flushes data only, no file-system metadata.
        On a full disk it settles for less, and fails only if `need` does not fit.
        """
        new = -(-max(need, self.allocated + self._chunk) // 4096) * 4096
        zeros = bytes(min(new - self.allocated, 1 << 20))
        try:
            while self.allocated < new:
                piece = zeros[: new - self.allocated]
                write_all(self._fd, piece, self.allocated)
                self.allocated += len(piece)
            if sync:
                os.fsync(self._fd)
        except OSError:
            self.allocated = max(self.end, os.fstat(self._fd).st_size)
            if self.allocated < need:
                raise

    def append(self, frame: bytes, *, sync: bool = True) -> None:
        """Write a frame after the last one; not durable until `sync`."""
        if self.end + len(frame) > self.allocated:
            self._extend(self.end + len(frame), sync=sync)
        write_all(self._fd, frame, self.end)
        self.end += len(frame)

    def sync(self) -> None:
        """Make every appended frame durable."""
        os.fdatasync(self._fd)

    def close(self) -> None:
        """Close the descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
