"""The OurDB facade: a durable, append-only record store addressed by integer ids."""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType

from core.ourdb.config import OurDBConfig, SyncMode
from core.ourdb.errors import (
    CorruptDatabaseError,
    CorruptRecordError,
    DatabaseFullError,
    InvalidIdError,
    OurDBError,
    ReadOnlyError,
    RecordNotFoundError,
    WriteFailedError,
)
from core.ourdb.files import DataFiles, fsync_dir
from core.ourdb.format import HEADER_LEN, Header, Location, crc32, data_file_name, unpack_header
from core.ourdb.journal import DeleteOp, InsertRun, Journal, Op, SetOp, encode_ops
from core.ourdb.lock import WriterLock, writer_active
from core.ourdb.meta import LOCK_NAME, TABLE_DIR, Meta, write_exports, write_meta
from core.ourdb.planner import (
    DeleteRequest,
    Layout,
    Planner,
    RecordInfo,
    Request,
    SetRequest,
    WriterState,
    check_id,
    plausible_prev,
)
from core.ourdb.recovery import Recovered, recover

# One read usually covers header and payload of a small record.
_READ_AHEAD = 1024
# A reader next to a writer that appends without pause races it on every try; with
# waits of 10, 20, ... 50 ms (capped) twenty tries span about 0.9 s before it gives up.
_READER_RETRIES = 20
_READER_WAIT_MAX = 0.05
_LEN_CRC = struct.Struct("<HI")
_PREV = struct.Struct(">HI")
SetItem = bytes | tuple[bytes, int | None]


def to_request(item: SetItem, restore: bool = False) -> SetRequest:
    """A `set_many` item as a request: a payload, or a `(data, id)` pair.

    `restore` lets a pair's id that lost its record take one again (see SetRequest).
    """
    if isinstance(item, bytes | bytearray | memoryview):
        return SetRequest(bytes(item))
    return SetRequest(bytes(item[0]), item[1], restore)


@dataclass
class Stats:
    """Counters for tests and benchmarks."""

    commits: int = 0
    syncs: int = 0
    checkpoints: int = 0


class OurDB:
    """One OurDB directory, opened for writing (exclusively) or read-only.

    Thread-safe: reads may run in any thread while one thread writes. Use as a
    context manager, or call `close()`; a crash without `close()` loses nothing
    acknowledged.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: OurDBConfig | None = None,
        *,
        readonly: bool = False,
        reset: bool = False,
        min_next_id: int | None = None,
    ) -> None:
        """Open (creating if needed) the database in directory `path`.

        Args:
            path: database directory.
            config: layout and sync settings; None adopts the stored layout (or the
                defaults for a new database) with default sync settings.
            readonly: open without the writer lock and never modify a file.
            reset: delete everything in the directory first (spec's `reset`).
            min_next_id: incremental mode: the first id `set(data)` may hand out is at
                least this (see `reserve_ids_above`); ignored when it is not higher.

        Raises:
            CorruptDatabaseError: a file is damaged in a way that is not a torn tail;
                nothing was cut (run `heroagent ourdb repair`).
        """
        self.path = os.fspath(path)
        self.readonly = readonly
        self.config = config or OurDBConfig()
        self.stats = Stats()
        self._closed = False
        self._failed: WriteFailedError | None = None
        self._lock = threading.RLock()  # table, overlay, descriptors: held by readers
        self._wlock = threading.RLock()  # serialises writers, flushes and checkpoints
        self._unapplied: list[Op] = []
        self._pending: dict[int, Location] = {}
        self._timer: threading.Timer | None = None
        self._writer_lock: WriterLock | None = None
        if readonly:
            if not os.path.isdir(self.path):
                raise OurDBError(f"database directory {self.path} does not exist")
        else:
            os.makedirs(self.path, exist_ok=True)
            self._writer_lock = WriterLock(os.path.join(self.path, LOCK_NAME), self.path)
        try:
            if reset and not readonly:
                self._wipe()
            self._files = DataFiles(self.path, writable=not readonly)
            chunk = min(max(self.config.journal_limit // 16, 4096), 4 << 20)
            self._journal = Journal(self.path, writable=not readonly, chunk=chunk)
            rec = self._recover(config, readonly)
        except BaseException:
            # A refused open must not leak descriptors: callers may retry after a repair.
            for name in ("_files", "_journal"):
                opened = getattr(self, name, None)
                if opened is not None:
                    opened.close()
            if self._writer_lock is not None:
                self._writer_lock.release()
            raise
        self.warnings = rec.warnings
        self._table = rec.table
        meta = rec.meta
        self._generation = meta.generation
        self.layout = Layout(
            meta.keysize, meta.incremental, meta.record_nr_max, self.config.file_size
        )
        self._state = WriterState(meta.next_id, meta.id_limit, meta.cur_file, meta.cur_end)
        self._planner = Planner(self.layout, self._lookup, self._read_info)
        try:
            needs_checkpoint = rec.needs_checkpoint
            if min_next_id is not None:
                needs_checkpoint |= self._raise_next_id(min_next_id - 1) and not readonly
            if needs_checkpoint:
                self.checkpoint()
        except BaseException:
            self.close()
            raise

    def _recover(self, config: OurDBConfig | None, readonly: bool) -> Recovered:
        """Run recovery; a reader retries what a live writer's appends can look like.

        A reader copies the journal while the writer may be appending to it, so it can
        see a frame half written with the next one already there, a table that is
        ahead of the frames it read, or data past the end they name. That is damage only
        if it is still there when no append is in flight, so a reader tries again while
        a writer holds the lock.
        """
        lock = os.path.join(self.path, LOCK_NAME)
        for attempt in range(_READER_RETRIES):
            last = not readonly or attempt == _READER_RETRIES - 1
            try:
                rec = recover(self.path, config, self._files, self._journal, writable=not readonly)
            except CorruptDatabaseError:
                if last or not writer_active(lock):
                    raise
            else:
                # Warnings (a tail, a table ahead) are as likely a race as refusals.
                if last or not rec.warnings or not writer_active(lock):
                    return rec
                rec.table.close()
            time.sleep(min(0.01 * (attempt + 1), _READER_WAIT_MAX))  # let the append finish
            self._files.close()
            self._files = DataFiles(self.path, writable=False)
        raise AssertionError("unreachable")

    # -- context manager -------------------------------------------------------------

    def __enter__(self) -> OurDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------

    def set(self, data: bytes, id: int | None = None) -> int:
        """Store `data` as a new record (id None, incremental mode) or a new version of `id`.

        Returns:
            The id used. The write is durable on return in `SyncMode.ALWAYS`.
        """
        return self._single([SetRequest(bytes(data), id)])

    def set_many(self, items: Iterable[SetItem], *, restore: bool = False) -> list[int]:
        """Store many records with one write and one sync; all or nothing.

        Args:
            items: payloads (new ids) or `(data, id)` pairs.
            restore: a pair's id below `next_id()` whose record was lost (cut off with a
                torn tail, say) takes `data` as its record again, where it would be
                refused; a key the caller keeps elsewhere (Redis) then finds its record.
        """
        reqs: list[Request] = [
            SetRequest(it) if type(it) is bytes else to_request(it, restore) for it in items
        ]
        result = self.commit([reqs])[0]
        if isinstance(result, OurDBError):
            raise result
        return result

    def delete(self, id: int, *, erase_history: bool = True) -> None:
        """Delete `id`; zero its newest record and, by default, every older version.

        With `erase_history=False` only the newest record is zeroed, as in the originals.
        """
        self._single([DeleteRequest(id, erase_history)])

    def delete_many(self, ids: Iterable[int], *, erase_history: bool = True) -> None:
        """Delete every one of `ids` with one journal write and one sync; all or nothing.

        An id without a record fails the whole call with RecordNotFoundError.
        """
        reqs: list[Request] = [DeleteRequest(record_id, erase_history) for record_id in ids]
        if reqs:
            self._single(reqs)

    def _single(self, reqs: list[Request]) -> int:
        result = self.commit([reqs])[0]
        if isinstance(result, OurDBError):
            raise result
        return result[0]

    def commit(
        self,
        groups: list[list[Request]],
        written: Callable[[list[list[int] | OurDBError]], object] | None = None,
    ) -> list[list[int] | OurDBError]:
        """Commit several independent groups of requests with one write and one sync.

        Each group is all-or-nothing; a group that fails validation gets its error in the
        result list and writes nothing. An I/O failure raises WriteFailedError for all.
        `written`, when given, hears the results once the records and their journal frame
        are written, before the sync: a process killed from then on leaves them to the
        next open (the kernel has them); only a crash of the machine may still lose them.
        It is not called when nothing is written.
        """
        with self._wlock:
            self._check_writable()
            plan, state = self._planner.plan(groups, self._state)
            if not plan.ops:
                return plan.results
            try:
                for run in plan.runs:
                    self._table.reserve(run.first_id, run.first_id + len(run.positions) - 1)
                for record_id in plan.changes:
                    self._table.reserve(record_id, record_id)
                for file_nr, (start, chunks) in sorted(plan.appends.items()):
                    self._files.write(file_nr, b"".join(chunks), start)
                self._journal.append(
                    encode_ops(plan.ops), sync=self.config.sync is not SyncMode.NONE
                )
            except OSError as exc:
                raise self._fail(exc, "writing") from exc
            self._state = state
            self.stats.commits += 1
            if written is not None:
                written(plan.results)
            with self._lock:
                self._unapplied.extend(plan.ops)
                if self.config.sync is SyncMode.BATCH:
                    for run in plan.runs:
                        self._pending.update(run.locations())
                    self._pending.update(plan.changes)
            if self.config.sync is SyncMode.BATCH:
                self._arm_timer()
            else:
                self._flush()
            if self._journal.end > self.config.journal_limit:
                self.checkpoint()
            return plan.results

    def reserve_ids_above(self, last_used: int) -> int:
        """Never hand out an id at or below `last_used` again (incremental mode).

        For callers that keep ids elsewhere too, such as an index of the records: pass
        the highest id they know, and a database that lost its newest records to damage
        still never gives one of those ids to a new record. Durable on return (it
        checkpoints when it moves the counter).

        Returns:
            The id the next `set(data)` will use.

        Raises:
            InvalidIdError: key-value mode, or `last_used` has no slot.
        """
        with self._wlock:
            self._check_writable()
            if self._raise_next_id(last_used):
                self.checkpoint()
            return self._state.next_id

    def skip_ids_to(self, next_id: int) -> None:
        """Let the next new record take `next_id` (never lower), without a checkpoint.

        For rewrites that put records back under their own ids (compaction): the
        counter moves in memory only, which is durable once a record with a higher id
        is written. Everyone else wants `reserve_ids_above`.
        """
        with self._wlock:
            self._check_writable()
            self._raise_next_id(next_id - 1)

    def _raise_next_id(self, last_used: int) -> bool:
        """Move the id counter past `last_used`; True when it moved."""
        if not self.layout.incremental:
            raise InvalidIdError("incremental mode is not enabled: ids are given by the caller")
        if not -1 <= last_used < self.layout.record_nr_max:
            raise InvalidIdError(
                f"id {last_used} is out of range 0..{self.layout.record_nr_max - 1}"
            )
        if last_used < self._state.next_id:
            return False
        self._state.next_id = last_used + 1
        return True

    def sync(self) -> None:
        """Make every acknowledged write durable now (only matters in BATCH mode)."""
        with self._wlock:
            self._check_writable()
            self._flush()

    def _flush(self) -> None:
        if not self._unapplied:
            return
        try:
            if self.config.sync is not SyncMode.NONE:
                self._journal.sync()
                self.stats.syncs += 1
            with self._lock:
                for op in self._unapplied:
                    if isinstance(op, InsertRun):
                        self._table.set_run(op.first_id, op.file_nr, op.positions)
                    elif isinstance(op, SetOp):
                        self._table.set(op.record_id, op.loc)
                    else:
                        self._zero(op)
                self._unapplied.clear()
                self._pending.clear()
        except OSError as exc:
            raise self._fail(exc, "syncing") from exc

    def _zero(self, op: DeleteOp) -> None:
        for loc, length in op.regions:
            self._files.write(loc.file_nr, bytes(HEADER_LEN + length), loc.position)
        self._table.clear(op.record_id)

    def _arm_timer(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.config.batch_window, self._timed_flush)
            self._timer.daemon = True
            self._timer.start()

    def _timed_flush(self) -> None:
        with self._wlock:
            self._timer = None
            if self._failed is None and not self._closed:
                with contextlib.suppress(WriteFailedError):  # kept in self._failed
                    self._flush()

    def checkpoint(self, *, closing: bool = False) -> None:
        """Fold the journal into the table and meta file, then empty the journal.

        Args:
            closing: leave the journal without preallocated space, so that the next
                open reads a few bytes instead of megabytes of zeros.
        """
        with self._wlock:
            self._check_writable()
            self._flush()
            durable = self.config.sync is not SyncMode.NONE
            st = self._state
            meta = Meta(
                self.layout.keysize,
                self.layout.incremental,
                self.layout.record_nr_max,
                st.next_id,
                st.id_limit,
                st.cur_file,
                st.cur_end,
                self._generation + 1,
            )
            try:
                if durable:
                    self._files.sync()
                    self._table.flush()
                    fsync_dir(os.path.join(self.path, TABLE_DIR))
                write_meta(self.path, meta, sync=durable)
                self._journal.reset(meta.generation, sync=durable, preallocate=not closing)
            except OSError as exc:
                raise self._fail(exc, "checkpointing") from exc
            self._generation = meta.generation
            self.stats.checkpoints += 1

    def _check_writable(self) -> None:
        if self._closed:
            raise ReadOnlyError(f"database {self.path} is closed")
        if self.readonly:
            raise ReadOnlyError(f"database {self.path} is open read-only")
        if self._failed is not None:
            raise WriteFailedError(
                f"database {self.path} refuses writes after an earlier failure "
                f"({self._failed}); reopen it"
            )

    def _fail(self, exc: OSError, doing: str) -> WriteFailedError:
        self._failed = WriteFailedError(
            f"{doing} {self.path} failed: {exc}; nothing in this batch was acknowledged "
            "and the database refuses writes until it is reopened"
        )
        return self._failed

    # -- reads ------------------------------------------------------------------------

    def _lookup(self, record_id: int) -> Location:
        pending = self._pending.get(record_id)
        return pending if pending is not None else self._table.get(record_id)

    def location(self, id: int) -> Location:
        """Location of the newest version of `id` (the null location if none)."""
        self._check_open()
        check_id(self.layout, id)
        with self._lock:
            return self._lookup(id)

    def get(self, id: int) -> bytes:
        """Payload of the newest version of `id`.

        Raises:
            RecordNotFoundError: no record for this id.
            CorruptRecordError: the record fails its checks (names id, file and offset).
        """
        payload = self._get_fast(id, blocking=True)
        return self._get_slow(id) if payload is None else payload

    def get_now(self, id: int) -> bytes | None:
        """`get` when it answers at once from an open file; else None, and nothing done.

        For an event loop that would rather not hop to a thread for a small record: None
        when a writer holds the lock, the record is missing or damaged, or it needs more
        than one read. The caller then asks `get`, which says why.
        """
        return self._get_fast(id, blocking=False)

    def _get_fast(self, id: int, *, blocking: bool) -> bytes | None:
        """The hot path of `get`: one pread covers header and payload of a small record."""
        if self._closed or not 0 <= id < self.layout.record_nr_max:
            return None
        if not self._lock.acquire(blocking=blocking):
            return None
        try:
            pending = self._pending.get(id) if self._pending else None
            file_nr, position = pending if pending is not None else self._table.position(id)
            if position == 0:
                if not blocking:
                    return None
                raise RecordNotFoundError(id)
            fd = self._files.cached_read_fd(file_nr)
            raw = os.pread(fd, _READ_AHEAD, position) if fd >= 0 else b""
        finally:
            self._lock.release()
        if len(raw) >= HEADER_LEN:
            length, crc = _LEN_CRC.unpack_from(raw)
            end = HEADER_LEN + length
            payload = raw[HEADER_LEN:end]
            if len(payload) == length and zlib.crc32(payload) == crc:
                prev_file, prev_pos = _PREV.unpack_from(raw, 6)
                if prev_pos == 0:
                    ok = prev_file == 0
                else:
                    ok = prev_file < file_nr or (
                        prev_file == file_nr and prev_pos + HEADER_LEN <= position
                    )
                if ok:
                    return payload
        return None

    def _get_slow(self, record_id: int) -> bytes:
        loc = self.location(record_id)
        if loc.is_null:
            raise RecordNotFoundError(record_id)
        return self.read_at(loc, record_id)[0]

    def get_history(self, id: int, depth: int) -> list[bytes]:
        """Up to `depth` versions of `id`, newest first, for every keysize."""
        if depth < 0:
            raise ValueError(f"depth {depth} is negative")
        loc = self.location(id)
        if depth == 0:
            return []
        if loc.is_null:
            raise RecordNotFoundError(id)
        out: list[bytes] = []
        while len(out) < depth:
            payload, header = self.read_at(loc, id)
            out.append(payload)
            if header.prev.is_null:
                break
            loc = header.prev
        return out

    def read_at(self, loc: Location, record_id: int | None = None) -> tuple[bytes, Header]:
        """Read and check the record at `loc`; CorruptRecordError names what is wrong."""
        file = os.path.join(self.path, data_file_name(loc.file_nr))

        def corrupt(reason: str) -> CorruptRecordError:
            return CorruptRecordError(record_id, file, loc.position, reason)

        with self._lock:
            try:
                raw = self._files.read(loc.file_nr, _READ_AHEAD, loc.position)
                if len(raw) >= HEADER_LEN:
                    need = HEADER_LEN + unpack_header(raw[:HEADER_LEN]).length - len(raw)
                    if need > 0:
                        raw += self._files.read(loc.file_nr, need, loc.position + len(raw))
            except FileNotFoundError:
                raise corrupt("data file is missing") from None
        if len(raw) < HEADER_LEN:
            raise corrupt(f"header cut short: file ends {len(raw)} bytes into it")
        header = unpack_header(raw[:HEADER_LEN])
        payload = raw[HEADER_LEN : HEADER_LEN + header.length]
        if len(payload) < header.length:
            raise corrupt(f"payload cut short: {len(payload)} of {header.length} bytes present")
        if crc32(payload) != header.crc:
            raise corrupt("CRC mismatch: data corruption detected")
        if not plausible_prev(header.prev, loc):
            raise corrupt(f"previous-version pointer {tuple(header.prev)} is not older")
        return payload, header

    def _read_info(self, loc: Location) -> RecordInfo | None:
        try:
            _, header = self.read_at(loc)
        except OurDBError:
            return None
        return header.length, header.prev

    def next_id(self) -> int:
        """The id the next `set(data)` will use (not reserved)."""
        self._check_open()
        if not self.layout.incremental:
            raise InvalidIdError("incremental mode is not enabled")
        if self._state.next_id >= self.layout.record_nr_max:
            raise DatabaseFullError(f"lookup table is full ({self.layout.record_nr_max} slots)")
        return self._state.next_id

    def __iter__(self) -> Iterator[int]:
        """Live ids, ascending (a snapshot taken when iteration starts)."""
        self._check_open()
        with self._lock:
            ids = set(self._table.live_ids(self._state.id_limit))
            for record_id, loc in self._pending.items():
                (ids.discard if loc.is_null else ids.add)(record_id)
        return iter(sorted(ids))

    def _check_open(self) -> None:
        if self._closed:
            raise ReadOnlyError(f"database {self.path} is closed")

    def data_files(self) -> dict[int, int]:
        """Size in bytes of every data file, by number."""
        return {n: self._files.size(n) for n in self._files.existing()}

    @property
    def writer_state(self) -> WriterState:
        """A copy of the append position and id counters."""
        return replace(self._state)

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Checkpoint, write the spec-format lookup dump, release files and the lock."""
        if self._closed:
            return
        with self._wlock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                if not self.readonly and self._failed is None:
                    self.checkpoint(closing=True)
                    if self.config.export_on_close:
                        sparse = self._table.sparse_dump(self._state.id_limit)
                        next_id = self._state.next_id if self.layout.incremental else None
                        durable = self.config.sync is not SyncMode.NONE
                        write_exports(self.path, sparse, next_id, sync=durable)
            finally:
                self._closed = True
                with self._lock:
                    self._table.close()
                    self._files.close()
                    self._journal.close()
                if self._writer_lock is not None:
                    self._writer_lock.release()

    def _wipe(self) -> None:
        for name in os.listdir(self.path):
            if name == LOCK_NAME:
                continue
            full = os.path.join(self.path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
