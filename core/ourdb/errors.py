"""The OurDB exception hierarchy; every message names what failed and where."""

from __future__ import annotations

import os


class OurDBError(Exception):
    """Base class of every error OurDB raises."""


class ConfigError(OurDBError, ValueError):
    """The configuration is invalid or contradicts the one stored with the database."""


class InvalidIdError(OurDBError, ValueError):
    """An id is outside the lookup table or not allowed in the current mode."""


class RecordNotFoundError(OurDBError, KeyError):
    """The id has no record (never written, or deleted)."""

    def __init__(self, record_id: int) -> None:
        super().__init__(f"record not found: id {record_id}")
        self.record_id = record_id

    def __str__(self) -> str:
        # KeyError would repr() the message and wrap it in quotes.
        return str(self.args[0])


class PayloadTooLargeError(OurDBError, ValueError):
    """A payload does not fit the 16-bit length field of the record header."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"payload of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class LocationOverflowError(OurDBError):
    """The next record's location cannot be stored with this database's keysize."""


class DatabaseFullError(OurDBError):
    """No id or no data file number is left."""


class CorruptRecordError(OurDBError):
    """A record fails its checks (CRC, length, previous pointer) when read."""

    def __init__(self, record_id: int | None, file: str, offset: int, reason: str) -> None:
        who = "unknown id" if record_id is None else f"id {record_id}"
        super().__init__(f"corrupt record ({who}) in {file} at offset {offset}: {reason}")
        self.record_id = record_id
        self.file = file
        self.offset = offset
        self.reason = reason


class CorruptDatabaseError(OurDBError):
    """A file of the database is damaged; the open is refused so that nothing is cut.

    The message is one line naming the file, the offset and the commands to run, because
    it ends up in logs and terminal status lines. Recovery only ever cuts a torn tail;
    anything else stops here so that a flipped byte never costs acknowledged records.
    """

    def __init__(self, file: str, offset: int, reason: str, *, db: str | None = None) -> None:
        self.file = file
        self.offset = offset
        self.reason = " ".join(reason.split())  # one line, whatever the cause said
        self.db = db if db is not None else os.path.dirname(file) or "."
        super().__init__(
            f"{file} is damaged at offset {offset}: {self.reason}; nothing was cut. "
            f"Run `heroagent ourdb verify {self.db}` to see the damage, then "
            f"`heroagent ourdb repair {self.db}` to keep every intact record"
        )


class CorruptMetadataError(CorruptDatabaseError):
    """`ourdb.meta`, the journal header or the lookup dump is damaged."""


class CorruptJournalError(CorruptDatabaseError):
    """A frame inside `ourdb.journal` is damaged and is not a torn tail."""


class CorruptLookupError(CorruptDatabaseError):
    """The lookup table file is damaged, or names records the journal does not know."""


class LockedError(OurDBError):
    """Another writer holds the database."""

    def __init__(self, path: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "an unknown process"
        super().__init__(f"database {path} is locked by {holder}")
        self.path = path
        self.pid = pid


class WriteFailedError(OurDBError):
    """A write or sync failed; nothing in the failed batch was acknowledged.

    The store refuses further writes until it is reopened, because the state of the
    files after a failed write or fsync is unknown (a failed fsync may already have
    dropped dirty pages).
    """


class ReadOnlyError(OurDBError):
    """A write was attempted on a database opened read-only, closed or failed."""
