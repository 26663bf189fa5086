"""OurDB configuration and the sync modes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.ourdb.errors import ConfigError
from core.ourdb.format import KEYSIZES, MAX_PAYLOAD, choose_keysize


class SyncMode(enum.StrEnum):
    """When a write reaches stable storage relative to its acknowledgement.

    * ``ALWAYS``: a write returns only after its journal frame is fsynced. Loses nothing
      acknowledged, even on power loss. Concurrent writers share one fsync.
    * ``BATCH``: a write returns once it is in the page cache; a background flush syncs
      it within ``batch_window`` seconds. A process crash loses nothing; a power loss or
      kernel crash loses at most the last window of acknowledged writes (older state
      stays consistent).
    * ``NONE``: never syncs. For scratch data: a process crash loses nothing, but a power
      loss or kernel crash can lose any amount and leave the lookup inconsistent.
    """

    ALWAYS = "always"
    BATCH = "batch"
    NONE = "none"


@dataclass(frozen=True)
class OurDBConfig:
    """How a database is laid out and synced.

    The first four fields shape the on-disk format and are stored in the database's
    metadata; reopening with different values is an error.

    Attributes:
        record_nr_max: number of lookup slots; valid ids are below this.
        record_size_max: only used to choose the keysize, as in the originals.
        incremental: ids are allocated by the database (`set(data)`) when true.
        keysize: bytes per lookup entry; None chooses it with the originals' rule.
        file_size: a data file is closed for appends once it reaches this size.
        sync: see `SyncMode`.
        batch_window: longest time an acknowledged write stays unsynced in BATCH mode.
        journal_limit: journal bytes that trigger a checkpoint.
        export_on_close: write the spec's sparse `lookup_dump.db/` on close.
    """

    record_nr_max: int = 16_777_215
    record_size_max: int = 4096
    incremental: bool = True
    keysize: int | None = None
    file_size: int = 500 * 2**20
    sync: SyncMode = SyncMode.ALWAYS
    batch_window: float = 0.05
    journal_limit: int = 64 * 2**20
    export_on_close: bool = True

    def __post_init__(self) -> None:
        # Accept "always"/"batch"/"none" too; the code compares members by identity.
        object.__setattr__(self, "sync", SyncMode(self.sync))

    def resolved_keysize(self) -> int:
        """The keysize this config gives."""
        if self.keysize is not None:
            return self.keysize
        return choose_keysize(self.record_nr_max, self.record_size_max)

    def validate(self) -> None:
        """Raise ConfigError on impossible values."""
        if not 1 <= self.record_nr_max <= 2**32:
            raise ConfigError(f"record_nr_max {self.record_nr_max} outside 1..2**32")
        if not 0 < self.record_size_max <= MAX_PAYLOAD:
            raise ConfigError(f"record_size_max {self.record_size_max} outside 1..{MAX_PAYLOAD}")
        if self.resolved_keysize() not in KEYSIZES:
            raise ConfigError(f"keysize {self.keysize} not one of {KEYSIZES}")
        if not 1 <= self.file_size < 2**32:
            raise ConfigError(f"file_size {self.file_size} outside 1..2**32-1")
        if self.batch_window <= 0:
            raise ConfigError(f"batch_window {self.batch_window} must be positive")
        if self.journal_limit < 4096:
            raise ConfigError(f"journal_limit {self.journal_limit} below 4096")
        SyncMode(self.sync)
