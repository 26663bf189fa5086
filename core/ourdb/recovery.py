"""Opening a database: load the checkpoint, replay the journal, cut a torn tail."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from core.ourdb.config import OurDBConfig
from core.ourdb.errors import ConfigError, CorruptMetadataError
from core.ourdb.files import DataFiles
from core.ourdb.format import FIRST_POSITION, HEADER_LEN, Location, unpack_header
from core.ourdb.journal import DeleteOp, InsertRun, Journal, SetOp, decode_ops
from core.ourdb.lookup import LookupTable
from core.ourdb.meta import TABLE_DIR, Meta, read_dump, read_meta

log = logging.getLogger("core.ourdb")


@dataclass
class Recovered:
    """The state an open ends with, and what it had to repair."""

    meta: Meta
    table: LookupTable
    warnings: list[str] = field(default_factory=list)
    frames_replayed: int = 0
    needs_checkpoint: bool = False


def _warn(rec: Recovered, message: str) -> None:
    log.warning("%s", message)
    rec.warnings.append(message)


def recover(
    directory: str,
    config: OurDBConfig | None,
    files: DataFiles,
    journal: Journal,
    *,
    writable: bool,
) -> Recovered:
    """Bring `directory` to its last acknowledged state (read-only: in memory only)."""
    meta = read_meta(directory)
    fresh = meta is None
    if meta is None:
        cfg = config or OurDBConfig()
        cfg.validate()
        meta = Meta(cfg.resolved_keysize(), cfg.incremental, cfg.record_nr_max, 1, 0, 0, 0, 1)
    elif config is not None:
        _check_config(meta, config, directory)
    table_path = os.path.join(directory, TABLE_DIR, "data")
    if writable:
        os.makedirs(os.path.dirname(table_path), exist_ok=True)
    elif not os.path.exists(table_path):
        table_path = ""
    table = LookupTable(table_path, meta.record_nr_max, meta.keysize, writable=writable)
    rec = Recovered(meta, table, needs_checkpoint=fresh)
    if fresh:
        _import_foreign(rec, directory, files)
    else:
        _replay(rec, files, journal, writable=writable)
    _check_tail(rec, files, writable=writable, foreign=fresh)
    return rec


def _check_config(meta: Meta, config: OurDBConfig, directory: str) -> None:
    config.validate()
    stored = (meta.keysize, meta.incremental, meta.record_nr_max)
    wanted = (config.resolved_keysize(), config.incremental, config.record_nr_max)
    if stored != wanted:
        raise ConfigError(
            f"{directory} was created with keysize={stored[0]} incremental={stored[1]} "
            f"record_nr_max={stored[2]}; the config asks for keysize={wanted[0]} "
            f"incremental={wanted[1]} record_nr_max={wanted[2]} (pass config=None to adopt "
            "the stored values)"
        )


def _import_foreign(rec: Recovered, directory: str, files: DataFiles) -> None:
    """A directory without meta: new, or written by an original (spec §8.7)."""
    meta = rec.meta
    dump = read_dump(directory)
    if dump is not None:
        sparse, next_id = dump
        try:
            ids = rec.table.load_sparse(sparse)
        except ValueError as exc:
            raise CorruptMetadataError(f"{directory}/lookup_dump.db/data: {exc}") from exc
        meta.id_limit = max(ids, default=-1) + 1
        if meta.incremental:
            meta.next_id = next_id if next_id is not None else max(meta.id_limit, 1)
        log.info("imported %d lookup entries from %s/lookup_dump.db", len(ids), directory)
    existing = files.existing()
    if existing:
        meta.cur_file = existing[-1]
        meta.cur_end = max(files.size(meta.cur_file), FIRST_POSITION)


def _replay(rec: Recovered, files: DataFiles, journal: Journal, *, writable: bool) -> None:
    meta, table = rec.meta, rec.table
    generation, frames, _ = journal.read()
    if generation > meta.generation:
        raise CorruptMetadataError(
            f"{journal.path} is generation {generation}, newer than the meta file's "
            f"{meta.generation}; the meta file was replaced by an older copy"
        )
    if generation < meta.generation:
        # A checkpoint folded this journal into the table before it could be reset.
        rec.needs_checkpoint = writable
        return
    for _, body in frames:
        rec.frames_replayed += 1
        for op in decode_ops(body):
            if isinstance(op, InsertRun):
                _redo_write(op.file_nr, op.start, op.blob, files, writable)
                table.set_run(op.first_id, op.file_nr, op.positions)
                _advance(
                    meta, op.file_nr, op.start + len(op.blob), op.first_id + len(op.positions) - 1
                )
            elif isinstance(op, SetOp):
                _redo_write(op.loc.file_nr, op.loc.position, op.record, files, writable)
                table.set(op.record_id, op.loc)
                _advance(meta, op.loc.file_nr, op.loc.position + len(op.record), op.record_id)
            elif isinstance(op, DeleteOp):
                for loc, length in op.regions:
                    _redo_zero(loc, HEADER_LEN + length, files, writable)
                table.clear(op.record_id)
    torn = journal.tail_bytes()
    if torn:
        _warn(
            rec,
            f"torn journal tail in {journal.path} at offset {journal.end}: "
            f"dropped {torn} bytes (never acknowledged)",
        )
        if writable:
            journal.truncate_tail()
    rec.needs_checkpoint = writable and (
        rec.needs_checkpoint or rec.frames_replayed > 0 or torn > 0
    )


def _advance(meta: Meta, file_nr: int, end: int, last_id: int) -> None:
    """Move the durable end and id counters past a replayed record."""
    if file_nr > meta.cur_file:
        meta.cur_file, meta.cur_end = file_nr, end
    elif file_nr == meta.cur_file:
        meta.cur_end = max(meta.cur_end, end)
    meta.id_limit = max(meta.id_limit, last_id + 1)
    if meta.incremental and last_id >= meta.next_id:
        meta.next_id = last_id + 1


def _redo_write(file_nr: int, position: int, data: bytes, files: DataFiles, writable: bool) -> None:
    try:
        have = files.read(file_nr, len(data), position)
    except FileNotFoundError:
        have = b""
    if have != data and writable:
        files.write(file_nr, data, position)


def _redo_zero(loc: Location, length: int, files: DataFiles, writable: bool) -> None:
    try:
        have = files.read(loc.file_nr, length, loc.position)
    except FileNotFoundError:
        return
    if have.strip(b"\x00") and writable:
        files.write(loc.file_nr, bytes(len(have)), loc.position)


def _check_tail(rec: Recovered, files: DataFiles, *, writable: bool, foreign: bool) -> None:
    """Cut bytes past the durable end; repair known records that a truncation tore."""
    meta = rec.meta
    for file_nr in files.existing():
        if file_nr > meta.cur_file:
            # Created by a rollover whose journal frame never became durable.
            size = files.size(file_nr)
            if size > FIRST_POSITION:
                _cut(rec, files, file_nr, FIRST_POSITION, size, writable, "unacknowledged tail")
            meta.cur_file, meta.cur_end = file_nr, FIRST_POSITION
    size = files.size(meta.cur_file)
    if size < 0:
        if writable:
            files.create(meta.cur_file)
            rec.needs_checkpoint = True
        size = FIRST_POSITION if writable else 0
    if foreign or size < meta.cur_end:
        _repair_torn(rec, files, size, writable)
    elif size > meta.cur_end:
        _cut(rec, files, meta.cur_file, meta.cur_end, size, writable, "unacknowledged tail")


def _cut(
    rec: Recovered, files: DataFiles, file_nr: int, at: int, size: int, writable: bool, what: str
) -> None:
    _warn(rec, f"{what} in {files.path(file_nr)} at offset {at}: dropped {size - at} bytes")
    if writable:
        files.truncate(file_nr, at)
        rec.needs_checkpoint = True


def _repair_torn(rec: Recovered, files: DataFiles, size: int, writable: bool) -> None:
    """Find records of the newest file that extend past its end; point ids at older ones."""
    meta, table = rec.meta, rec.table
    cur = meta.cur_file
    torn: list[tuple[int, Location]] = []
    for record_id in table.live_ids(meta.id_limit):
        loc = table.get(record_id)
        if loc.file_nr != cur:
            continue
        header = _header(files, cur, loc.position, size)
        complete = len(header) == HEADER_LEN
        if not complete or loc.position + HEADER_LEN + unpack_header(header).length > size:
            torn.append((record_id, loc))
    if not torn:
        if size < meta.cur_end:
            short = meta.cur_end - size
            _warn(rec, f"{files.path(cur)} is {short} bytes short; no live record lost")
            rec.needs_checkpoint = writable
        meta.cur_end = max(size, FIRST_POSITION)
        return
    cut = min(loc.position for _, loc in torn)
    reverted = []
    for record_id, loc in torn:
        header = _header(files, cur, loc.position, size)
        prev = unpack_header(header).prev if len(header) == HEADER_LEN else Location(0, 0)
        usable = not prev.is_null and (prev.file_nr < cur or prev.position < cut)
        if not writable:
            reverted.append(f"{record_id} would be reverted")
        elif usable:
            table.set(record_id, prev)
            reverted.append(f"{record_id}->previous version")
        else:
            table.clear(record_id)
            reverted.append(f"{record_id}->absent")
    _warn(
        rec,
        f"torn record in {files.path(cur)} at offset {cut}: dropped {size - cut} bytes "
        f"(ids {', '.join(reverted)})",
    )
    if writable:
        files.truncate(cur, cut)
    meta.cur_end = cut
    rec.needs_checkpoint = writable


def _header(files: DataFiles, file_nr: int, position: int, size: int) -> bytes:
    if position >= size:
        return b""
    try:
        return files.read(file_nr, min(HEADER_LEN, size - position), position)
    except FileNotFoundError:
        return b""
