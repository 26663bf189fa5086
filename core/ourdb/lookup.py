"""The lookup table: id -> location, kept in a memory-mapped file of fixed-size entries."""

from __future__ import annotations

import errno
import mmap
import os
import struct
from collections.abc import Iterator

from core.ourdb.format import Location, decode_entry, encode_entry

_SPARSE_ID = struct.Struct("<I")
_LOC6 = struct.Struct(">HI")
_PAGE = 4096
_ENTRY_FORMATS = {2: ">H", 4: ">I", 6: ">HI"}


class LookupTable:
    """`record_nr_max` entries of `keysize` bytes, the spec's disk-based table layout.

    The table lives in `<path>/lookup/data` and is memory-mapped, so opening a
    database costs no load time whatever its size. The file is only a cache of the
    journal: it may hold any mix of old and new entries after a crash, because every
    change since the last checkpoint is replayed from the journal on open.
    """

    def __init__(self, path: str, record_nr_max: int, keysize: int, *, writable: bool) -> None:
        self.keysize = keysize
        self.record_nr_max = record_nr_max
        self.size = record_nr_max * keysize
        self._zero = bytes(keysize)
        self.path = path
        self._fd = -1
        self._scan_fd = -1
        self._reserved: set[int] = set()
        if not path:
            # Read-only open of a directory that has no table yet: anonymous zero pages.
            self._map = mmap.mmap(-1, max(self.size, 1))
            return
        flags = os.O_RDWR | os.O_CREAT if writable else os.O_RDONLY
        fd = os.open(path, flags, 0o600)
        self._fd = os.dup(fd) if writable else -1
        self._scan_fd = os.dup(fd)
        try:
            current = os.fstat(fd).st_size
            if writable and current < self.size:
                # ftruncate makes a sparse file: untouched slots cost no disk space.
                os.ftruncate(fd, self.size)
            elif current < self.size:
                raise ValueError(f"lookup table {path} is {current} bytes, expected {self.size}")
            # A read-only open still replays the journal, so it needs a private copy.
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_COPY
            self._map = mmap.mmap(fd, self.size, access=access)
        finally:
            os.close(fd)

    def reserve(self, first_id: int, last_id: int) -> None:
        """Allocate disk blocks under the entries of ids first..last before writing them.

        The table file is sparse. Writing through the map into a hole on a full disk
        raises SIGBUS and kills the process; posix_fallocate turns that into ENOSPC.
        """
        if self._fd < 0:
            return
        lo, hi = first_id * self.keysize // _PAGE, (last_id + 1) * self.keysize // _PAGE
        if all(page in self._reserved for page in range(lo, hi + 1)):
            return
        end = min((hi + 1) * _PAGE, self.size)
        os.posix_fallocate(self._fd, lo * _PAGE, end - lo * _PAGE)
        self._reserved.update(range(lo, hi + 1))

    def in_range(self, record_id: int) -> bool:
        """True when the id has a slot (real integers, no u32 wrap)."""
        return 0 <= record_id < self.record_nr_max

    def get(self, record_id: int) -> Location:
        """Location stored for an id that is in range; the null location if empty."""
        start = record_id * self.keysize
        raw = self._map[start : start + self.keysize]
        if raw == self._zero:
            return Location(0, 0)
        return decode_entry(raw)

    def position(self, record_id: int) -> tuple[int, int]:
        """(file_nr, position) of an in-range id without building a Location (hot path)."""
        ks = self.keysize
        if ks == 6:
            pair: tuple[int, int] = _LOC6.unpack_from(self._map, record_id * 6)
            return pair
        start = record_id * ks
        return 0, int.from_bytes(self._map[start : start + ks], "big")

    def set(self, record_id: int, loc: Location) -> None:
        """Store a location; callers have checked that it fits the keysize."""
        self.reserve(record_id, record_id)
        start = record_id * self.keysize
        self._map[start : start + self.keysize] = encode_entry(loc, self.keysize)

    def set_run(self, first_id: int, file_nr: int, positions: list[int]) -> None:
        """Store consecutive ids in one slice assignment (callers checked the fit)."""
        ks = self.keysize
        if ks == 6:
            pack = _LOC6.pack
            blob = b"".join([pack(file_nr, p) for p in positions])
        else:
            blob = b"".join([p.to_bytes(ks, "big") for p in positions])
        self.reserve(first_id, first_id + len(positions) - 1)
        start = first_id * ks
        self._map[start : start + len(blob)] = blob

    def clear(self, record_id: int) -> None:
        """Empty a slot."""
        start = record_id * self.keysize
        self._map[start : start + self.keysize] = self._zero

    def live_ids(self, upto: int) -> Iterator[int]:
        """Ids below `upto` whose slot is not empty, ascending."""
        ks = self.keysize
        view = self._map
        chunk_ids = 65536
        for base in range(0, min(upto, self.record_nr_max), chunk_ids):
            stop = min(base + chunk_ids, upto, self.record_nr_max)
            block = view[base * ks : stop * ks]
            if not block.strip(b"\x00"):
                continue
            for i in range(stop - base):
                if block[i * ks : (i + 1) * ks] != self._zero:
                    yield base + i

    def sparse_dump(self, upto: int) -> bytes:
        """The spec's sparse dump (§5.3): u32 LE id + entry for every non-empty slot."""
        ks = self.keysize
        out = bytearray()
        for record_id in self.live_ids(upto):
            out += _SPARSE_ID.pack(record_id)
            out += self._map[record_id * ks : (record_id + 1) * ks]
        return bytes(out)

    def load_sparse(self, data: bytes) -> list[int]:
        """Set entries from a sparse dump directly (the V importer rejected id gaps).

        Returns:
            The ids loaded.

        Raises:
            ValueError: the length is not a multiple of the chunk size, or an id is out
                of range.
        """
        chunk = 4 + self.keysize
        if len(data) % chunk:
            raise ValueError(f"Invalid sparse data format: data length must be multiple of {chunk}")
        ids = []
        for off in range(0, len(data), chunk):
            (record_id,) = _SPARSE_ID.unpack_from(data, off)
            if not self.in_range(record_id):
                raise ValueError(f"sparse dump names id {record_id}, outside the table")
            start = record_id * self.keysize
            self._map[start : start + self.keysize] = data[off + 4 : off + chunk]
            ids.append(record_id)
        return ids

    def max_live_id(self, from_id: int) -> int | None:
        """The highest id at or above `from_id` whose slot is not empty, or None.

        Cheap enough for every open: only the allocated parts of the sparse file past
        `from_id` are read (SEEK_DATA), which is a page or two on a healthy database.
        """
        if self._scan_fd < 0:
            return None  # an anonymous table holds only what this process loaded
        ks = self.keysize
        pos = max(from_id, 0) * ks
        highest: int | None = None
        while pos < self.size:
            try:
                data = os.lseek(self._scan_fd, pos, os.SEEK_DATA)
                hole = os.lseek(self._scan_fd, data, os.SEEK_HOLE)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break  # nothing but holes from here on
                data, hole = pos, self.size  # no SEEK_DATA here: read it all
            data, hole = max(data, pos), min(hole, self.size)
            for start in range(data, hole, 1 << 20):
                block = self._map[start : min(start + (1 << 20), hole)]
                used = len(block.rstrip(b"\x00"))
                if used:
                    highest = (start + used - 1) // ks
            pos = max(hole, pos + 1)
        return highest

    def max_location(self, upto: int) -> tuple[int, Location] | None:
        """The id below `upto` whose entry names the newest location, with that location.

        Entries are big-endian, so comparing their bytes compares (file_nr, position).
        """
        ks = self.keysize
        best: bytes = self._zero
        best_id = -1
        chunk_ids = 65536
        for base in range(0, min(upto, self.record_nr_max), chunk_ids):
            stop = min(base + chunk_ids, upto, self.record_nr_max)
            block = self._map[base * ks : stop * ks]
            if not block.strip(b"\x00"):
                continue
            fmt = _ENTRY_FORMATS.get(ks)
            if fmt is None:
                i = max(range(stop - base), key=lambda n: block[n * ks : (n + 1) * ks])
            else:
                # Unpacked in C: a million entries take milliseconds instead of a second.
                values = list(struct.iter_unpack(fmt, block))
                i = values.index(max(values))
            entry = block[i * ks : (i + 1) * ks]
            if entry > best:
                best, best_id = entry, base + i
        return None if best_id < 0 else (best_id, decode_entry(best))

    def prefix(self, upto: int) -> bytes:
        """Raw table bytes for ids below `upto` (the spec's full-table layout)."""
        return self._map[: min(upto, self.record_nr_max) * self.keysize]

    def flush(self) -> None:
        """Write dirty pages of the table back to its file (msync)."""
        self._map.flush()

    def close(self) -> None:
        """Unmap the table."""
        self._map.close()
        for fd in (self._fd, self._scan_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._scan_fd = -1
