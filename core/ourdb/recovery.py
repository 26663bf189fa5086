"""Opening a database: load the checkpoint, replay the journal, cut only a torn tail.

What recovery may cut is narrow on purpose: one incomplete last journal frame, data past
the durable end that nothing names, and records a truncated file tore. Everything cut is
copied to `<db>/quarantine/` first. Any other damage (a bad frame with more after it, a
damaged meta or journal header, a lookup table that names records the journal lost and
that do not read back) refuses the open with a `CorruptDatabaseError`, so a flipped byte
never costs acknowledged records or hands their ids out again.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
from dataclasses import dataclass, field

from core.ourdb.config import OurDBConfig
from core.ourdb.errors import (
    ConfigError,
    CorruptJournalError,
    CorruptLookupError,
    CorruptMetadataError,
)
from core.ourdb.files import DataFiles
from core.ourdb.format import (
    FIRST_POSITION,
    HEADER_LEN,
    Location,
    crc32,
    data_file_name,
    unpack_header,
)
from core.ourdb.journal import (
    BadOpsError,
    DeleteOp,
    InsertRun,
    Journal,
    SetOp,
    Tail,
    decode_ops,
)
from core.ourdb.lookup import LookupTable
from core.ourdb.meta import META_NAME, TABLE_DIR, Meta, read_dump, read_meta
from core.ourdb.planner import plausible_prev
from core.ourdb.quarantine import quarantine_range

log = logging.getLogger("core.ourdb")
_NON_ZERO = re.compile(rb"[^\x00]")
_ZERO_HEADER = bytes(HEADER_LEN)


@dataclass
class Recovered:
    """The state an open ends with, and what it had to repair."""

    meta: Meta
    table: LookupTable
    warnings: list[str] = field(default_factory=list)
    frames_replayed: int = 0
    needs_checkpoint: bool = False
    directory: str = ""


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
    """Bring `directory` to its last acknowledged state (read-only: in memory only).

    Raises:
        CorruptDatabaseError: damage that is not a torn tail; nothing was cut.
    """
    meta = read_meta(directory)
    fresh = meta is None
    table_path = os.path.join(directory, TABLE_DIR, "data")
    if meta is None:
        _check_no_lost_meta(directory, journal)
        cfg = config or OurDBConfig()
        cfg.validate()
        meta = Meta(cfg.resolved_keysize(), cfg.incremental, cfg.record_nr_max, 1, 0, 0, 0, 1)
    else:
        if config is not None:
            _check_config(meta, config, directory)
        _check_table_file(table_path, meta)
    if writable:
        os.makedirs(os.path.dirname(table_path), exist_ok=True)
    elif not os.path.exists(table_path):
        table_path = ""
    try:
        table = LookupTable(table_path, meta.record_nr_max, meta.keysize, writable=writable)
    except ValueError as exc:
        raise CorruptLookupError(table_path, 0, str(exc)) from exc
    # A read-only open never writes, so it never needs a checkpoint (upstream directories
    # have no meta file; asking for one made every read-only open of them fail).
    rec = Recovered(meta, table, needs_checkpoint=fresh and writable, directory=directory)
    try:
        torn = None
        if fresh:
            _import_foreign(rec, directory, files)
        else:
            torn = _replay(rec, files, journal, writable=writable)
        _check_ids(rec, files)
        _check_tail(rec, files, writable=writable, foreign=fresh)
        if torn is not None and writable:
            _cut_journal_tail(rec, journal, torn)  # last: every refusal comes before it
    except BaseException:
        table.close()
        raise
    return rec


def _check_no_lost_meta(directory: str, journal: Journal) -> None:
    """A journal with a header is only ever written after the first meta file."""
    generation, _, _ = journal.read()
    journal.forget_data()
    if generation:
        raise CorruptMetadataError(
            os.path.join(directory, META_NAME),
            0,
            f"the file is missing, yet {journal.path} holds generation {generation}",
        )


def _check_table_file(table_path: str, meta: Meta) -> None:
    """The table is sized in full before the first meta file is written."""
    want = meta.record_nr_max * meta.keysize
    try:
        have = os.stat(table_path).st_size
    except FileNotFoundError:
        raise CorruptLookupError(table_path, 0, "the lookup table is missing") from None
    if have < want:
        raise CorruptLookupError(table_path, have, f"the file is {have} bytes, expected {want}")


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
            dump_path = os.path.join(directory, "lookup_dump.db", "data")
            raise CorruptMetadataError(dump_path, len(sparse), str(exc)) from exc
        meta.id_limit = max(ids, default=-1) + 1
        if meta.incremental:
            meta.next_id = next_id if next_id is not None else max(meta.id_limit, 1)
        log.info("imported %d lookup entries from %s/lookup_dump.db", len(ids), directory)
    existing = files.existing()
    if existing:
        meta.cur_file = existing[-1]
        meta.cur_end = max(files.size(meta.cur_file), FIRST_POSITION)


def _replay(rec: Recovered, files: DataFiles, journal: Journal, *, writable: bool) -> Tail | None:
    """Replay the journal; returns a torn tail that the caller cuts after its checks."""
    meta, table = rec.meta, rec.table
    generation, frames, _ = journal.read()
    if generation > meta.generation:
        raise CorruptMetadataError(
            os.path.join(rec.directory, META_NAME),
            0,
            f"{journal.path} is generation {generation}, newer than the meta file's "
            f"{meta.generation}: the meta file was replaced by an older copy",
        )
    if generation < meta.generation:
        # A checkpoint folded this journal into the table before it could be reset.
        journal.forget_data()
        rec.needs_checkpoint = writable
        return None
    try:
        # Everything is parsed and classified before the first byte is written, so a
        # refused open leaves the files as they were.
        batches = []
        for offset, body in frames:
            try:
                batches.append(decode_ops(body))
            except BadOpsError as exc:
                raise CorruptJournalError(journal.path, offset, str(exc)) from exc
        tail = journal.tail()
    finally:
        journal.forget_data()
    if tail.kind == "corrupt":
        raise CorruptJournalError(journal.path, tail.offset, tail.reason)
    for ops in batches:
        rec.frames_replayed += 1
        for op in ops:
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
    rec.needs_checkpoint = writable and (rec.needs_checkpoint or rec.frames_replayed > 0)
    if tail.kind != "torn":
        return None
    # The table changes only after a frame is synced: if it already names a record past
    # what the journal replayed, the bad frame was whole and acknowledged.
    ahead = _table_ahead(rec)
    if ahead is not None:
        record_id, loc = ahead
        raise CorruptJournalError(
            journal.path,
            tail.offset,
            f"{tail.reason}, yet the lookup already names id {record_id} at "
            f"{data_file_name(loc.file_nr)}:{loc.position} from it",
        )
    _warn(
        rec,
        f"torn journal tail in {journal.path} at offset {tail.start}: "
        f"dropped {tail.end - tail.start} bytes (never acknowledged)",
    )
    rec.needs_checkpoint = writable
    return tail


def _cut_journal_tail(rec: Recovered, journal: Journal, tail: Tail) -> None:
    quarantine_range(
        rec.directory, journal.path, tail.start, tail.end, f"torn journal tail: {tail.reason}"
    )
    journal.truncate_tail()


def _table_ahead(rec: Recovered) -> tuple[int, Location] | None:
    """An id the table names at or past the durable end of the data, if any."""
    meta, table = rec.meta, rec.table
    upto = meta.id_limit
    extra = table.max_live_id(upto)
    if extra is not None:
        upto = extra + 1
    newest = table.max_location(upto)
    if newest is None:
        return None
    _, loc = newest
    if (loc.file_nr, loc.position) >= (meta.cur_file, meta.cur_end):
        return newest
    return None


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


def _check_ids(rec: Recovered, files: DataFiles) -> None:
    """Never hand out an id the table names, whatever the meta file and journal say.

    The table is written through after every sync, so after a crash it can know ids
    whose journal frames are gone. Their records are kept when they read back whole;
    a record the table names past the durable end that does not read back is damage.
    """
    meta, table = rec.meta, rec.table
    if meta.incremental and meta.next_id < meta.id_limit:
        meta.next_id = meta.id_limit
    extra = table.max_live_id(meta.id_limit)
    if extra is None:
        return
    known = meta.next_id if meta.incremental else meta.id_limit
    _warn(
        rec,
        f"the lookup table {table.path} names ids up to {extra}, beyond the "
        f"{known} the meta file and journal know; ids up to {extra} will not be handed out",
    )
    meta.id_limit = extra + 1
    if meta.incremental:
        meta.next_id = max(meta.next_id, extra + 1)
    rec.needs_checkpoint = files.writable


def _check_tail(rec: Recovered, files: DataFiles, *, writable: bool, foreign: bool) -> None:
    """Cut bytes past the durable end; repair known records that a truncation tore."""
    meta = rec.meta
    later = [n for n in files.existing() if n > meta.cur_file]
    if later or files.size(meta.cur_file) > meta.cur_end:
        _adopt_named(rec, files)
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
        if foreign:
            _foreign_tail(rec, files, writable)
    elif size > meta.cur_end:
        _cut(rec, files, meta.cur_file, meta.cur_end, size, writable, "unacknowledged tail")


def _adopt_named(rec: Recovered, files: DataFiles) -> None:
    """Before cutting past the durable end, keep what the table names there.

    Such records were acknowledged (the table changes only after a sync), so the
    journal lost their frames; cutting them would lose data and free their offsets.
    """
    ahead = _table_ahead(rec)
    if ahead is None:
        return
    meta = rec.meta
    record_id, loc = ahead
    file = files.path(loc.file_nr)
    try:
        raw = files.read(loc.file_nr, HEADER_LEN, loc.position)
        length = unpack_header(raw).length if len(raw) == HEADER_LEN else -1
        payload = files.read(loc.file_nr, length, loc.position + HEADER_LEN) if length >= 0 else b""
    except FileNotFoundError:
        raw, length, payload = b"", -1, b""
    if length < 0 or len(payload) != length or crc32(payload) != unpack_header(raw).crc:
        entry = record_id * rec.table.keysize
        raise CorruptLookupError(
            rec.table.path,
            entry,
            f"id {record_id} names {file} at offset {loc.position}, past the durable end "
            f"{data_file_name(meta.cur_file)}:{meta.cur_end}, where no whole record is",
        )
    end = loc.position + HEADER_LEN + length
    _warn(
        rec,
        f"the lookup names id {record_id} in {file} at offset {loc.position}, past the "
        f"durable end the journal knows; kept the data up to offset {end}",
    )
    meta.cur_file, meta.cur_end = loc.file_nr, end
    rec.needs_checkpoint = files.writable


def _cut(
    rec: Recovered, files: DataFiles, file_nr: int, at: int, size: int, writable: bool, what: str
) -> None:
    path = files.path(file_nr)
    _warn(rec, f"{what} in {path} at offset {at}: dropped {size - at} bytes")
    if writable:
        quarantine_range(rec.directory, path, at, size, what)
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
    path = files.path(cur)
    _warn(
        rec,
        f"torn record in {path} at offset {cut}: dropped {size - cut} bytes "
        f"(ids {', '.join(reverted)})",
    )
    if writable:
        note = f"torn record (ids {', '.join(reverted)})"
        quarantine_range(rec.directory, path, cut, size, note)
        files.truncate(cur, cut)
    meta.cur_end = cut
    rec.needs_checkpoint = writable


def _foreign_tail(rec: Recovered, files: DataFiles, writable: bool) -> None:
    """Cut what follows the last named record of an imported file unless it parses.

    An original keeps no durable end, so after the last record its lookup names there
    may be more whole records (kept: nothing names them, but they are intact), deleted
    regions (runs of zeros, kept), and a record a crash tore (cut).
    """
    meta, table = rec.meta, rec.table
    cur = meta.cur_file
    size = files.size(cur)
    if size <= FIRST_POSITION:
        return
    start = FIRST_POSITION
    for record_id in table.live_ids(meta.id_limit):
        loc = table.get(record_id)
        if loc.file_nr == cur:
            header = _header(files, cur, loc.position, size)
            if len(header) == HEADER_LEN:
                end = loc.position + HEADER_LEN + unpack_header(header).length
                if end <= size:
                    start = max(start, end)
    with open(files.path(cur), "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        bad = first_unparsed(m, start, size, cur)
    if bad is None:
        meta.cur_end = size
        return
    path = files.path(cur)
    _warn(
        rec,
        f"imported {path} has {size - bad} bytes at offset {bad}, after the last record its "
        "lookup names, that are not whole records: dropped",
    )
    if writable:
        quarantine_range(
            rec.directory, path, bad, size, "not whole records after the last named one"
        )
        files.truncate(cur, bad)
        rec.needs_checkpoint = True
    meta.cur_end = max(bad, FIRST_POSITION)


def _whole_record(m: mmap.mmap, pos: int, size: int, file_nr: int) -> int:
    """End of a whole, CRC-valid record at `pos` whose older version is older, or -1."""
    if pos + HEADER_LEN > size:
        return -1
    header = unpack_header(m[pos : pos + HEADER_LEN])
    end = pos + HEADER_LEN + header.length
    if end > size or crc32(m[pos + HEADER_LEN : end]) != header.crc:
        return -1
    if not plausible_prev(header.prev, Location(file_nr, pos)):
        return -1
    return end


def first_unparsed(m: mmap.mmap, pos: int, size: int, file_nr: int) -> int | None:
    """Offset of the first byte from `pos` on that is not a record or a deleted region."""
    while pos < size:
        if m[pos : pos + HEADER_LEN] == _ZERO_HEADER or pos + HEADER_LEN > size:
            # A deleted record is all zeros (spec §3.2): skip the run, then resynchronise
            # on a record whose first non-zero byte is inside its header.
            found = _NON_ZERO.search(m, pos)
            if found is None:
                return None
            nz = found.start()
            # Nearest first: an empty record fits inside the zeros before a real one.
            starts = range(nz, max(pos, nz - HEADER_LEN + 1) - 1, -1)
            nxt = next((c for c in starts if _whole_record(m, c, size, file_nr) > 0), None)
            if nxt is None:
                return pos
            pos = nxt
            continue
        end = _whole_record(m, pos, size, file_nr)
        if end < 0:
            return pos
        pos = end
    return None


def _header(files: DataFiles, file_nr: int, position: int, size: int) -> bytes:
    if position >= size:
        return b""
    try:
        return files.read(file_nr, min(HEADER_LEN, size - position), position)
    except FileNotFoundError:
        return b""
