"""`repair`: keep every intact record of a damaged database, quarantine the rest.

Opening refuses a database whose damage is more than a torn tail. Repair is the explicit
step after that: it takes the writer lock, works out the layout (from the meta file even
when its checksum fails, checked against the lookup table's size), replays every whole
journal frame wherever it lies, lets the newest readable location of each id win
(the table may know newer records than the journal after a crash), checks every version
of every live id, unlinks what does not read back, cuts only what follows the last
readable record of the newest data file, and writes a fresh checkpoint. Every byte it
removes or overwrites is copied to `<db>/quarantine/` first, with a note.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from core.ourdb.config import OurDBConfig
from core.ourdb.db import OurDB
from core.ourdb.errors import CorruptDatabaseError, OurDBError
from core.ourdb.files import DataFiles, fsync_dir
from core.ourdb.format import (
    FIRST_POSITION,
    HEADER_LEN,
    NULL_LOCATION,
    Header,
    Location,
    crc32,
    data_file_name,
    location_bytes,
    unpack_header,
)
from core.ourdb.journal import (
    FILE_HEADER_LEN,
    FRAME_HEADER_LEN,
    BadOpsError,
    DeleteOp,
    InsertRun,
    Journal,
    Op,
    SetOp,
    decode_ops,
    decode_ops_prefix,
)
from core.ourdb.lock import WriterLock
from core.ourdb.lookup import LookupTable
from core.ourdb.meta import DUMP_DIR, LOCK_NAME, META_NAME, TABLE_DIR, Meta, write_meta
from core.ourdb.planner import plausible_prev
from core.ourdb.quarantine import notes, quarantine, quarantine_range
from core.ourdb.recovery import first_unparsed

Progress = Callable[[str], None]


@dataclass
class RepairReport:
    """What a repair found and did."""

    path: str
    frames_replayed: int = 0
    journal_damage: list[tuple[int, int]] = field(default_factory=list)
    ids_kept: int = 0
    ids_reverted: list[int] = field(default_factory=list)
    ids_cleared: list[int] = field(default_factory=list)
    versions_unlinked: int = 0
    quarantined: list[str] = field(default_factory=list)
    next_id: int | None = None
    problems_after: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when repair removed or rewrote anything."""
        return bool(self.quarantined or self.ids_reverted or self.ids_cleared)


def repair(
    path: str | os.PathLike[str],
    config: OurDBConfig | None = None,
    *,
    progress: Progress | None = None,
) -> RepairReport:
    """Repair the database in `path` so that it opens and verifies clean.

    Args:
        path: database directory.
        config: the layout to assume when the meta file is beyond reading; otherwise
            only its sync settings matter.
        progress: called with one line per step.

    Raises:
        OurDBError: the directory is missing, locked, or its layout cannot be told.
    """
    directory = os.fspath(path)
    say = progress or (lambda _line: None)
    if not os.path.isdir(directory):
        raise OurDBError(f"database directory {directory} does not exist")
    report = RepairReport(directory)
    lock = WriterLock(os.path.join(directory, LOCK_NAME), directory)
    try:
        if _has_state(directory):
            _Repair(directory, config, report, say).run()
        else:
            say("no meta file and no journal: importing the data files as an original wrote them")
    finally:
        lock.release()
    # A normal open then checkpoints, cuts a foreign tail to quarantine and writes the
    # exports; a read-only pass confirms that every version reads back.
    before = _quarantine_count(directory)
    with OurDB(directory, config) as db:
        for line in db.warnings:
            say(f"open: {line}")
        report.next_id = db.next_id() if db.layout.incremental else None
    report.quarantined += _quarantined_since(directory, before)
    report.problems_after = check(directory)
    say(
        f"repaired {directory}: {report.ids_kept} ids kept, {len(report.ids_reverted)} "
        f"reverted to an older version, {len(report.ids_cleared)} cleared, "
        f"{len(report.quarantined)} items in quarantine, "
        f"{len(report.problems_after)} problems left"
    )
    return report


def check(directory: str) -> list[str]:
    """Problems a read-only open and a read of every version find (empty when clean)."""
    problems: list[str] = []
    try:
        db = OurDB(directory, readonly=True)
    except CorruptDatabaseError as exc:
        return [str(exc)]
    with db:
        problems.extend(db.warnings)
        for record_id in db:
            loc = db.location(record_id)
            while not loc.is_null:
                try:
                    _, header = db.read_at(loc, record_id)
                except OurDBError as exc:
                    problems.append(str(exc))
                    break
                loc = header.prev
    return problems


def _has_state(directory: str) -> bool:
    meta = os.path.join(directory, META_NAME)
    journal = os.path.join(directory, "ourdb.journal")
    return os.path.exists(meta) or (os.path.exists(journal) and os.path.getsize(journal) > 0)


def _quarantine_count(directory: str) -> int:
    return len(notes(directory))


def _quarantined_since(directory: str, before: int) -> list[str]:
    return [n.removesuffix(".note") + ".bin" for n in notes(directory)[before:]]


class _Repair:
    def __init__(
        self, directory: str, config: OurDBConfig | None, report: RepairReport, say: Progress
    ) -> None:
        self.dir = directory
        self.config = config
        self.report = report
        self.say = say
        self.files = DataFiles(directory, writable=True)
        self.journal = Journal(directory, writable=True)
        self.highest_id = 0

    def keep(self, source: str, offset: int, data: bytes, reason: str) -> None:
        self.report.quarantined.append(quarantine(self.dir, source, offset, data, reason))

    def run(self) -> None:
        try:
            meta = self.layout()
            table_path = os.path.join(self.dir, TABLE_DIR, "data")
            os.makedirs(os.path.dirname(table_path), exist_ok=True)
            want = meta.record_nr_max * meta.keysize
            have = os.path.getsize(table_path) if os.path.exists(table_path) else -1
            if have < want:
                what = "missing" if have < 0 else f"{have} bytes, expected {want}"
                self.say(f"lookup: {table_path} is {what}; ids it held come from the journal")
            table = LookupTable(table_path, meta.record_nr_max, meta.keysize, writable=True)
            try:
                generation = self.replay(meta, table)
                upto = max(meta.id_limit, self.highest_id + 1)
                extra = table.max_live_id(upto)
                if extra is not None:
                    upto = extra + 1
                self.check_versions(table, upto)
                cur_file, cur_end = self.trim_tail(table, upto)
                self.highest_id = max(self.highest_id, upto - 1)
                self.checkpoint(meta, table, generation, cur_file, cur_end)
            finally:
                table.close()
        finally:
            self.files.close()
            self.journal.close()

    # -- layout ---------------------------------------------------------------------

    def layout(self) -> Meta:
        """The meta file's fields, salvaged past a bad checksum when they make sense."""
        meta_path = os.path.join(self.dir, META_NAME)
        try:
            with open(meta_path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            raw = b""
        table_path = os.path.join(self.dir, TABLE_DIR, "data")
        table_size = os.path.getsize(table_path) if os.path.exists(table_path) else -1
        try:
            return Meta.decode(raw, meta_path)
        except CorruptDatabaseError as exc:
            self.say(f"meta: {exc.reason}")
        if raw:
            self.keep(meta_path, 0, raw, "damaged meta file, replaced by repair")
        salvaged = Meta.salvage(raw, table_size)
        if self.config is not None:
            salvaged = None  # the caller knows the layout better than damaged bytes
        if salvaged is not None:
            self.say("meta: its fields agree with the lookup table's size; using them")
            if not 0 < salvaged.next_id <= salvaged.record_nr_max:
                salvaged.next_id = 1  # recomputed from the ids found
            if not 0 <= salvaged.id_limit <= salvaged.record_nr_max:
                salvaged.id_limit = 0
            return salvaged
        cfg = self.config
        if (
            cfg is None
            and table_size == OurDBConfig().record_nr_max * OurDBConfig().resolved_keysize()
        ):
            cfg = OurDBConfig()
        if cfg is None:
            raise OurDBError(
                f"{meta_path} is damaged beyond reading and the layout cannot be told from "
                f"{table_path}: pass the layout the database was created with "
                "(--record-nr-max, --keysize, --key-value)"
            )
        self.say("meta: rebuilt from the given layout")
        return Meta(cfg.resolved_keysize(), cfg.incremental, cfg.record_nr_max, 1, 0, 0, 0, 0)

    # -- journal --------------------------------------------------------------------

    def replay(self, meta: Meta, table: LookupTable) -> int:
        """Apply every whole frame in file order, never moving an id back in time.

        A damaged region is kept in quarantine; the ops at its start that still parse
        are applied only where the data files confirm them (see `salvage`).
        """
        generation, frames, damaged = self.journal.salvage()
        raw = _read_range(self.journal.path, 0, max((end for _, end in damaged), default=0))
        items: list[tuple[int, bytes | None, int]] = [(o, b, 0) for o, b in frames]
        items += [(start, None, end) for start, end in damaged]
        salvaged = 0
        for offset, body, end in sorted(items, key=lambda item: item[0]):
            if body is None:
                self.keep(
                    self.journal.path,
                    offset,
                    raw[offset:end],
                    "damaged journal bytes (not a whole frame)",
                )
                self.report.journal_damage.append((offset, end))
                if offset >= FILE_HEADER_LEN:
                    body = raw[offset + FRAME_HEADER_LEN : end]
                    salvaged += self.salvage(body, meta, table)
                continue
            try:
                ops = decode_ops(body)
            except BadOpsError as exc:
                self.keep(
                    self.journal.path, offset, body, f"journal frame that does not parse: {exc}"
                )
                self.report.journal_damage.append((offset, offset + len(body)))
                salvaged += self.salvage(body, meta, table)
                continue
            for op in ops:
                self.apply(op, table)
            self.report.frames_replayed += 1
        self.say(
            f"journal: {self.report.frames_replayed} whole frames replayed, "
            f"{len(self.report.journal_damage)} damaged regions quarantined, "
            f"{salvaged} ops confirmed from them by the data files"
        )
        return max(meta.generation, generation or 0)

    def salvage(self, body: bytes, meta: Meta, table: LookupTable) -> int:
        """Apply the ops of a damaged frame body that the data files confirm.

        The frame's own bytes are not trusted, so nothing is rewritten from them: an op
        counts only when the data file holds a whole record at its location that
        continues the id's history (an update's previous pointer is the id's current
        location; an insert run starts right after the newest id so far).
        """
        done = 0
        for op in decode_ops_prefix(body):
            if isinstance(op, InsertRun):
                expected = max(self.highest_id, meta.next_id - 1) + 1
                if op.first_id != expected:
                    continue
                for record_id, loc in op.locations():
                    header, _ = self.read(loc)
                    if header is None or not header.prev.is_null or not table.in_range(record_id):
                        break
                    current = table.get(record_id)
                    if current.is_null or current < loc:
                        table.set(record_id, loc)
                    self.highest_id = max(self.highest_id, record_id)
                    done += 1
            elif isinstance(op, SetOp):
                header, _ = self.read(op.loc)
                if header is None or not table.in_range(op.record_id):
                    continue
                current = table.get(op.record_id)
                if header.prev == current and not current.is_null:
                    table.set(op.record_id, op.loc)
                    done += 1
            elif table.in_range(op.record_id):
                current = table.get(op.record_id)
                zeroed = all(
                    not self.files.read(loc.file_nr, HEADER_LEN + n, loc.position).strip(b"\x00")
                    for loc, n in op.regions
                    if loc.file_nr in self.files.existing()
                )
                if op.regions and zeroed and current in [loc for loc, _ in op.regions]:
                    table.clear(op.record_id)
                    done += 1
        return done

    def apply(self, op: Op, table: LookupTable) -> None:
        if isinstance(op, DeleteOp):
            newest = max((loc for loc, _ in op.regions), default=NULL_LOCATION)
            current = table.get(op.record_id)
            if not current.is_null and current > newest and self.readable(current):
                return  # set again after this delete, by a frame the journal lost
            for loc, length in op.regions:
                self.rewrite(loc, bytes(HEADER_LEN + length))
            table.clear(op.record_id)
            self.highest_id = max(self.highest_id, op.record_id)
            return
        pairs: list[tuple[int, Location, bytes]]
        if isinstance(op, InsertRun):
            pairs = []
            for n, (record_id, loc) in enumerate(op.locations()):
                start = loc.position - op.start
                stop = op.positions[n + 1] - op.start if n + 1 < len(op.positions) else len(op.blob)
                pairs.append((record_id, loc, op.blob[start:stop]))
        else:
            assert isinstance(op, SetOp)
            pairs = [(op.record_id, op.loc, op.record)]
        for record_id, loc, record in pairs:
            if not table.in_range(record_id):
                continue
            self.rewrite(loc, record)
            current = table.get(record_id)
            if current.is_null or current <= loc or not self.readable(current):
                table.set(record_id, loc)
            self.highest_id = max(self.highest_id, record_id)

    def rewrite(self, loc: Location, data: bytes) -> None:
        """Put journal bytes back into a data file, keeping what they replace."""
        try:
            have = self.files.read(loc.file_nr, len(data), loc.position)
        except FileNotFoundError:
            have = b""
        if have == data:
            return
        if have.strip(b"\x00"):
            self.keep(
                self.files.path(loc.file_nr),
                loc.position,
                have,
                "overwritten by the journal's copy",
            )
        self.files.write(loc.file_nr, data, loc.position)

    # -- records --------------------------------------------------------------------

    def read(self, loc: Location) -> tuple[Header | None, str]:
        """The header of a whole record at `loc`, or None and why not."""
        try:
            raw = self.files.read(loc.file_nr, HEADER_LEN, loc.position)
        except FileNotFoundError:
            return None, "data file is missing"
        if len(raw) < HEADER_LEN:
            return None, "header cut short"
        header = unpack_header(raw)
        payload = self.files.read(loc.file_nr, header.length, loc.position + HEADER_LEN)
        if len(payload) < header.length:
            return None, "payload cut short"
        if crc32(payload) != header.crc:
            return None, "CRC mismatch"
        if not plausible_prev(header.prev, loc):
            return None, "previous-version pointer is not older"
        return header, ""

    def readable(self, loc: Location) -> bool:
        return self.read(loc)[0] is not None

    def record_bytes(self, loc: Location) -> bytes:
        try:
            raw = self.files.read(loc.file_nr, HEADER_LEN, loc.position)
        except FileNotFoundError:
            return b""
        length = unpack_header(raw).length if len(raw) == HEADER_LEN else 0
        return raw + self.files.read(loc.file_nr, length, loc.position + HEADER_LEN)

    def older(self, loc: Location) -> Location:
        """The previous location a damaged record's header still gives, if it reads back."""
        try:
            raw = self.files.read(loc.file_nr, HEADER_LEN, loc.position)
        except FileNotFoundError:
            return NULL_LOCATION
        if len(raw) < HEADER_LEN:
            return NULL_LOCATION
        prev = unpack_header(raw).prev
        if prev.is_null or not plausible_prev(prev, loc) or not self.readable(prev):
            return NULL_LOCATION
        return prev

    def check_versions(self, table: LookupTable, upto: int) -> None:
        """Every version of every live id reads back, or is unlinked and quarantined."""
        checked = 0
        for record_id in list(table.live_ids(upto)):
            checked += 1
            self.highest_id = max(self.highest_id, record_id)
            loc = table.get(record_id)
            header, why = self.read(loc)
            if header is None:
                self.keep(
                    self.files.path(loc.file_nr),
                    loc.position,
                    self.record_bytes(loc),
                    f"id {record_id}: newest version does not read back ({why})",
                )
                older = self.older(loc)
                if older.is_null:
                    table.clear(record_id)
                    self.report.ids_cleared.append(record_id)
                    continue
                table.set(record_id, older)
                self.report.ids_reverted.append(record_id)
                loc = older
                header, _ = self.read(loc)
                assert header is not None
            self.report.ids_kept += 1
            self.unlink_damaged(record_id, loc, header)
        self.say(
            f"lookup: {checked} live ids checked, {len(self.report.ids_reverted)} reverted, "
            f"{len(self.report.ids_cleared)} cleared"
        )

    def unlink_damaged(self, record_id: int, loc: Location, header: Header) -> None:
        """Walk the history; point past an older version that does not read back."""
        seen = 0
        while not header.prev.is_null:
            prev = header.prev
            prev_header, why = self.read(prev)
            if prev_header is not None:
                loc, header = prev, prev_header
                seen += 1
                continue
            skip_to = self.older(prev)
            self.keep(
                self.files.path(prev.file_nr),
                prev.position,
                self.record_bytes(prev),
                f"id {record_id}: older version does not read back ({why})",
            )
            field_at = loc.position + 6
            self.keep(
                self.files.path(loc.file_nr),
                field_at,
                location_bytes(prev),
                f"id {record_id}: previous-version pointer rewritten to {tuple(skip_to)}",
            )
            self.files.write(loc.file_nr, location_bytes(skip_to), field_at)
            self.report.versions_unlinked += 1
            header = Header(header.length, header.crc, skip_to)
            if skip_to.is_null:
                return
            next_header, _ = self.read(skip_to)
            assert next_header is not None
            loc, header = skip_to, next_header

    # -- data files -----------------------------------------------------------------

    def trim_tail(self, table: LookupTable, upto: int) -> tuple[int, int]:
        """Cut only what follows the last readable record of the newest data file."""
        existing = self.files.existing()
        if not existing:
            return 0, FIRST_POSITION
        cur = existing[-1]
        size = self.files.size(cur)
        start = FIRST_POSITION
        for record_id in table.live_ids(upto):
            loc = table.get(record_id)
            while not loc.is_null and loc.file_nr >= cur:
                header, _ = self.read(loc)
                if header is None:
                    break
                start = max(start, loc.position + HEADER_LEN + header.length)
                loc = header.prev
        if size <= start:
            return cur, max(size, FIRST_POSITION)
        path = self.files.path(cur)
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            bad = first_unparsed(m, start, size, cur)
        if bad is None:
            return cur, size
        self.report.quarantined.append(
            quarantine_range(
                self.dir, path, bad, size, "not whole records after the last one in use"
            )
        )
        self.files.truncate(cur, bad)
        self.say(
            f"data: cut {size - bad} bytes from {data_file_name(cur)} at offset {bad} (quarantined)"
        )
        return cur, bad

    # -- checkpoint -----------------------------------------------------------------

    def exported_next_id(self) -> int:
        """The next id the exports of the last clean close recorded (0 if none).

        A deleted newest id leaves no trace in the table, so these are the only other
        witnesses of how far the counter got when the meta file's copy is damaged.
        """
        found = 0
        for inc in (os.path.join(TABLE_DIR, ".inc"), os.path.join(DUMP_DIR, ".inc")):
            try:
                with open(os.path.join(self.dir, inc), "rb") as fh:
                    text = fh.read().decode("ascii", errors="replace").strip()
            except FileNotFoundError:
                continue
            if text.isdigit():
                found = max(found, int(text))
        return found

    def checkpoint(
        self, meta: Meta, table: LookupTable, generation: int, cur_file: int, cur_end: int
    ) -> None:
        """Write the state found as a new generation, then empty the journal."""
        next_id = max(meta.next_id, self.highest_id + 1, self.exported_next_id(), 1)
        fixed = Meta(
            meta.keysize,
            meta.incremental,
            meta.record_nr_max,
            min(next_id, meta.record_nr_max),
            max(meta.id_limit, self.highest_id + 1),
            cur_file,
            cur_end,
            generation + 1,
        )
        self.files.sync()
        table.flush()
        fsync_dir(os.path.join(self.dir, TABLE_DIR))
        write_meta(self.dir, fixed, sync=True)
        self.journal.reset(fixed.generation, sync=True, preallocate=False)
        self.say(
            f"checkpoint: generation {fixed.generation}, next id {fixed.next_id}, "
            f"appends continue at {data_file_name(cur_file)}:{cur_end}"
        )


def _read_range(path: str, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(end - start)
