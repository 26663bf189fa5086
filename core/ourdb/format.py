"""Byte-level OurDB format: record headers, CRC-32, locations, keysize choice."""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

HEADER_LEN = 12
MAX_PAYLOAD = 0xFFFF
MAX_FILE_NR = 0xFFFF
MAX_POSITION = 0xFFFFFFFF
KEYSIZES = (2, 3, 4, 6)
# Every data file starts with one zero byte so that position 0 can mean "no record".
FILE_START = b"\x00"
FIRST_POSITION = 1
_TEN_MB = 10_000_000

_HEADER = struct.Struct("<HI6s")
_LOC = struct.Struct(">HI")


class Location(NamedTuple):
    """Where a record lives: data file number and byte offset of its header."""

    file_nr: int
    position: int

    @property
    def is_null(self) -> bool:
        """True for the null location (no record, or no older version)."""
        return self.position == 0


NULL_LOCATION = Location(0, 0)


class Header(NamedTuple):
    """The 12-byte record header, decoded."""

    length: int
    crc: int
    prev: Location


def crc32(payload: bytes) -> int:
    """CRC-32/ISO-HDLC of a payload, as stored in the header."""
    return zlib.crc32(payload) & 0xFFFFFFFF


def choose_keysize(record_nr_max: int, record_size_max: int) -> int:
    """The originals' keysize rule, including their u32 wrap of the product (spec §4.3)."""
    if record_nr_max < 1 << 16:
        keysize = 2
    elif record_nr_max < 1 << 24:
        keysize = 3
    else:
        keysize = 4
    if ((record_size_max * record_nr_max) % (1 << 32)) / 2 > _TEN_MB:
        keysize = 6
    return keysize


def location_bytes(loc: Location) -> bytes:
    """Canonical 6-byte big-endian form used in record headers."""
    return _LOC.pack(loc.file_nr, loc.position)


def decode_location(raw: bytes) -> Location:
    """Decode a 6-byte big-endian location."""
    file_nr, position = _LOC.unpack(raw)
    return Location(file_nr, position)


def entry_fits(loc: Location, keysize: int) -> bool:
    """True when a location survives encoding as a lookup entry of this keysize."""
    if keysize == 6:
        return loc.file_nr <= MAX_FILE_NR and loc.position <= MAX_POSITION
    return loc.file_nr == 0 and loc.position < 1 << (8 * keysize)


def encode_entry(loc: Location, keysize: int) -> bytes:
    """Lookup entry: the last `keysize` bytes of the 6-byte location.

    Raises:
        ValueError: the location does not fit (the originals truncated it silently).
    """
    if not entry_fits(loc, keysize):
        raise ValueError(f"location {loc} does not fit keysize {keysize}")
    return location_bytes(loc)[6 - keysize :]


def decode_entry(entry: bytes) -> Location:
    """Decode a lookup entry of any keysize (left-padded with zeros)."""
    if len(entry) > 6:
        raise ValueError("input bytes exceed keysize")
    return decode_location(bytes(6 - len(entry)) + entry)


def pack_header(payload: bytes, prev: Location) -> bytes:
    """Header for `payload` whose older version is at `prev`."""
    return _HEADER.pack(len(payload), crc32(payload), location_bytes(prev))


def unpack_header(raw: bytes) -> Header:
    """Decode a 12-byte header."""
    length, crc, prev = _HEADER.unpack(raw)
    return Header(length, crc, decode_location(prev))


def record_bytes(payload: bytes, prev: Location = NULL_LOCATION) -> bytes:
    """Header plus payload, exactly as appended to a data file."""
    return pack_header(payload, prev) + payload


def data_file_name(file_nr: int) -> str:
    """Name of data file `file_nr`: decimal, no padding."""
    return f"{file_nr}.db"
