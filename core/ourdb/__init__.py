"""OurDB: an append-only, CRC-checked record store, byte-compatible with the originals."""

from core.ourdb.aio import AsyncOurDB
from core.ourdb.config import OurDBConfig, SyncMode
from core.ourdb.db import OurDB, Stats
from core.ourdb.errors import (
    ConfigError,
    CorruptDatabaseError,
    CorruptJournalError,
    CorruptLookupError,
    CorruptMetadataError,
    CorruptRecordError,
    DatabaseFullError,
    InvalidIdError,
    LocationOverflowError,
    LockedError,
    OurDBError,
    PayloadTooLargeError,
    ReadOnlyError,
    RecordNotFoundError,
    WriteFailedError,
)
from core.ourdb.format import Location

__all__ = [
    "AsyncOurDB",
    "ConfigError",
    "CorruptDatabaseError",
    "CorruptJournalError",
    "CorruptLookupError",
    "CorruptMetadataError",
    "CorruptRecordError",
    "DatabaseFullError",
    "InvalidIdError",
    "Location",
    "LocationOverflowError",
    "LockedError",
    "OurDB",
    "OurDBConfig",
    "OurDBError",
    "PayloadTooLargeError",
    "ReadOnlyError",
    "RecordNotFoundError",
    "Stats",
    "SyncMode",
    "WriteFailedError",
]
