"""The write-ahead journal `ourdb.journal`: CRC-framed batches of sets and deletes."""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.ourdb.errors import CorruptJournalError, CorruptMetadataError
from core.ourdb.files import write_all
from core.ourdb.format import HEADER_LEN, Location, crc32

JOURNAL_NAME = "ourdb.journal"
_MAGIC = b"OURDBJNL"
_FILE_HEADER = struct.Struct("<8sII")  # magic, format version, generation
_FILE_HEADER_LEN = _FILE_HEADER.size + 4  # plus CRC of the above
FILE_HEADER_LEN = _FILE_HEADER_LEN
FRAME_HEADER_LEN = 8  # body length, CRC-32 of body
_FRAME = struct.Struct("<II")  # body length, CRC-32 of body
_SET = struct.Struct("<cIHI")  # 'S', id, file_nr, position; then the record bytes
_DEL = struct.Struct("<cIH")  # 'D', id, region count; then the regions
_REGION = struct.Struct("<HIH")  # file_nr, position, payload length
_RUN = struct.Struct("<cIHII")  # 'R', first id, file_nr, start, blob length; then the blob
_RECORD_LEN = struct.Struct("<H")
VERSION = 1
_CHUNK = 4 << 20
# Every frame body starts with an op kind; used to look for whole frames past damage.
_OP_KIND = re.compile(rb"[RSD]")


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


class BadOpsError(ValueError):
    """A frame body whose CRC holds but whose ops do not parse."""


def decode_ops(body: bytes) -> list[Op]:
    """Inverse of `encode_ops` for one frame body (CRC already checked).

    Raises:
        BadOpsError: the body does not parse (the caller knows the frame's offset).
    """
    try:
        return list(_decode(body))
    except struct.error as exc:
        raise BadOpsError(f"a journal op is cut short ({exc})") from exc


def decode_ops_prefix(body: bytes) -> list[Op]:
    """The ops that parse at the start of a damaged frame body (for repair to check)."""
    ops: list[Op] = []
    try:
        for op in _decode(body):
            ops.append(op)
    except (struct.error, BadOpsError):
        pass
    return ops


def _decode(body: bytes) -> Iterator[Op]:
    off = 0
    while off < len(body):
        kind = body[off : off + 1]
        if kind == b"R":
            _, first_id, file_nr, start, length = _RUN.unpack_from(body, off)
            off += _RUN.size
            blob = body[off : off + length]
            off += length
            if len(blob) != length:
                raise BadOpsError("an insert run is cut short")
            yield InsertRun(first_id, file_nr, start, run_positions(blob, start), blob)
        elif kind == b"S":
            _, record_id, file_nr, position = _SET.unpack_from(body, off)
            off += _SET.size
            (length,) = _RECORD_LEN.unpack_from(body, off)
            end = off + HEADER_LEN + length
            if end > len(body):
                raise BadOpsError("a set op is cut short")
            yield SetOp(record_id, Location(file_nr, position), body[off:end])
            off = end
        elif kind == b"D":
            _, record_id, count = _DEL.unpack_from(body, off)
            off += _DEL.size
            regions = []
            for _ in range(count):
                file_nr, position, length = _REGION.unpack_from(body, off)
                regions.append((Location(file_nr, position), length))
                off += _REGION.size
            yield DeleteOp(record_id, regions)
        else:
            raise BadOpsError(f"unknown journal op {kind!r} at body offset {off}")


@dataclass(frozen=True)
class Tail:
    """What follows the last whole frame of the journal.

    Attributes:
        kind: "clean" (only zeros or nothing), "torn" (one incomplete last frame, then
            zeros or the end of the file), or "corrupt" (anything else).
        start: end of the last whole frame; a torn tail is cut here.
        end: end of the non-zero bytes after `start`.
        offset: where the damage is (the bad frame, or the stray bytes).
        reason: what is wrong, for messages.
    """

    kind: str
    start: int
    end: int
    offset: int
    reason: str = ""


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

        After the iterator is exhausted, `self.end` is the end of the last whole frame
        and `tail()` tells what follows it. A missing, short or all-zero header (a crash
        while the journal was being reset) gives generation 0: nothing to replay.

        Raises:
            CorruptJournalError: the header holds bytes but fails its checks.
        """
        data = self._load()
        self.allocated = len(data)
        self.end = 0
        head = data[:_FILE_HEADER_LEN]
        if len(data) < _FILE_HEADER_LEN or not head.strip(b"\x00"):
            return 0, iter(()), len(data)
        magic, version, generation = _FILE_HEADER.unpack_from(data)
        (stored_crc,) = struct.unpack_from("<I", data, _FILE_HEADER.size)
        if magic != _MAGIC or crc32(data[: _FILE_HEADER.size]) != stored_crc:
            # Dropping the header would drop every frame after it: refuse instead.
            raise CorruptJournalError(self.path, 0, "the journal header fails its checksum")
        if version != VERSION:
            raise CorruptMetadataError(self.path, 8, f"unknown journal version {version}")
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

    def whole_frame_at(self, offset: int) -> bool:
        """True when a whole, CRC-valid frame starts at `offset` of the data read."""
        data = self._data
        if offset < _FILE_HEADER_LEN or offset + _FRAME.size > len(data):
            return False
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        return bool(0 < length <= len(data) - start and crc32(data[start : start + length]) == crc)

    def frames_after(self, offset: int, stop: int) -> Iterator[int]:
        """Offsets in `offset..stop` where a whole frame starts (found by its op kind)."""
        for match in _OP_KIND.finditer(self._data, offset + _FRAME.size, stop):
            candidate = match.start() - _FRAME.size
            if candidate > offset and self.whole_frame_at(candidate):
                yield candidate

    def tail(self) -> Tail:
        """Classify the bytes after the last whole frame (call after reading the frames).

        A writer appends each frame directly after the previous one, into zeros it
        preallocated, so a crash can leave only one incomplete frame there, followed by
        zeros or the end of the file. Anything else is damage to acknowledged frames.
        """
        data, start = self._data, self.end
        # One pass from the right over the preallocated zeros; nothing else is copied.
        end = len(data.rstrip(b"\x00"))
        if start == 0 or end <= start:
            return Tail("clean", start, start, start)
        rest = data[start:end]
        first = start + len(rest) - len(rest.lstrip(b"\x00"))
        # A frame starts at the end of the last one, unless its length field is zero.
        at = start if data[start : start + 4].strip(b"\x00") else first
        size = len(data)
        if at + _FRAME.size > size:
            extent, why = size, f"a frame header cut short at offset {at}"
        else:
            length, _ = _FRAME.unpack_from(data, at)
            extent = at + _FRAME.size + length
            if extent > size:
                extent, why = size, f"a frame at offset {at} claims {length} bytes past the end"
            elif self.whole_frame_at(at):
                return Tail("corrupt", start, end, at, f"a whole frame at offset {at} after a gap")
            else:
                why = f"the frame at offset {at} fails its checksum"
        for found in self.frames_after(at, end):
            return Tail("corrupt", start, end, at, f"{why}, and a whole frame follows at {found}")
        if data[extent:end].strip(b"\x00"):
            stray = extent + (len(data[extent:end]) - len(data[extent:end].lstrip(b"\x00")))
            reason = f"{why}, and non-zero bytes follow at offset {stray}"
            return Tail("corrupt", start, end, at, reason)
        return Tail("torn", start, end, at, why)

    def _load(self) -> bytes:
        """The journal file's bytes (none when it does not exist), kept for the reads."""
        try:
            with open(self.path, "rb") as fh:
                self._data = fh.read()
        except FileNotFoundError:
            self._data = b""
        return self._data

    def salvage(self) -> tuple[int | None, list[tuple[int, bytes]], list[tuple[int, int]]]:
        """For repair: every whole frame, whatever damage lies between them.

        Returns:
            The generation (None when the header is damaged), the whole frames as
            (offset, body) in file order, and the damaged regions as (start, end).
        """
        data = self._load()
        generation: int | None = None
        damaged: list[tuple[int, int]] = []
        if len(data) >= _FILE_HEADER_LEN:
            magic, version, gen = _FILE_HEADER.unpack_from(data)
            (stored_crc,) = struct.unpack_from("<I", data, _FILE_HEADER.size)
            intact = crc32(data[: _FILE_HEADER.size]) == stored_crc
            if magic == _MAGIC and version == VERSION and intact:
                generation = gen
            if generation is None and data[:_FILE_HEADER_LEN].strip(b"\x00"):
                damaged.append((0, _FILE_HEADER_LEN))
        elif data.strip(b"\x00"):
            damaged.append((0, len(data)))
        frames: list[tuple[int, bytes]] = []
        off = _FILE_HEADER_LEN
        end = len(data.rstrip(b"\x00"))
        while off < end:
            if self.whole_frame_at(off):
                (length,) = struct.unpack_from("<I", data, off)
                frames.append((off, data[off + _FRAME.size : off + _FRAME.size + length]))
                off += _FRAME.size + length
                continue
            found = next(self.frames_after(off, end), end)
            if data[off:found].strip(b"\x00"):
                damaged.append((off, found))
            off = found
        self._data = b""
        return generation, frames, damaged

    def forget_data(self) -> None:
        """Drop the copy of the file read by `read`."""
        self._data = b""

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
