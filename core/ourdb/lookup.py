"""The lookup table: id -> location, kept in a memory-mapped file of fixed-size entries."""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator

from core.ourdb.format import Location, decode_entry, encode_entry

_SPARSE_ID = struct.Struct("<I")
_LOC6 = struct.Struct(">HI")
_PAGE = 4096


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
        self._fd = -1
        self._reserved: set[int] = set()
        if not path:
            # Read-only open of a directory that has no table yet: anonymous zero pages.
            self._map = mmap.mmap(-1, max(self.size, 1))
            return
        flags = os.O_RDWR | os.O_CREAT if writable else os.O_RDONLY
        fd = os.open(path, flags, 0o600)
        self._fd = os.dup(fd) if writable else -1
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

    def prefix(self, upto: int) -> bytes:
        """Raw table bytes for ids below `upto` (the spec's full-table layout)."""
        return self._map[: min(upto, self.record_nr_max) * self.keysize]

    def flush(self) -> None:
        """Write dirty pages of the table back to its file (msync)."""
        self._map.flush()

    def close(self) -> None:
        """Unmap the table."""
        self._map.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
