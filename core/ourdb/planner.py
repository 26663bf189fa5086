"""Turns write requests into journal ops and file appends, validating all before any write."""

from __future__ import annotations

import struct
import zlib
from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from core.ourdb.errors import (
    DatabaseFullError,
    InvalidIdError,
    LocationOverflowError,
    OurDBError,
    PayloadTooLargeError,
    RecordNotFoundError,
)
from core.ourdb.format import (
    FILE_START,
    FIRST_POSITION,
    HEADER_LEN,
    MAX_FILE_NR,
    MAX_PAYLOAD,
    NULL_LOCATION,
    Location,
    entry_fits,
    record_bytes,
    unpack_header,
)
from core.ourdb.journal import DeleteOp, InsertRun, Op, SetOp

_NULL_PREV_HEADER = struct.Struct("<HI6x")


@dataclass(slots=True)
class SetRequest:
    """Store `data`; a new id when `record_id` is None (incremental mode).

    With `restore`, an id below the next one that has no record (lost to damage) takes
    `data` as its first version again, where a plain set refuses it.
    """

    data: bytes
    record_id: int | None = None
    restore: bool = False


@dataclass(slots=True)
class DeleteRequest:
    """Delete `record_id`; with `erase_history`, zero every older version too."""

    record_id: int
    erase_history: bool = True


Request = SetRequest | DeleteRequest


@dataclass
class WriterState:
    """What the next append needs to know; advanced as requests are planned."""

    next_id: int
    id_limit: int
    cur_file: int
    cur_end: int


@dataclass(frozen=True)
class Layout:
    """The fixed shape of a database, as far as planning is concerned."""

    keysize: int
    incremental: bool
    record_nr_max: int
    file_size: int


RecordInfo = tuple[int, Location]  # payload length, previous location


@dataclass
class Plan:
    """One commit: ops for the journal, bytes per data file, and a result per group."""

    ops: list[Op] = field(default_factory=list)
    appends: dict[int, tuple[int, list[bytes]]] = field(default_factory=dict)
    results: list[list[int] | OurDBError] = field(default_factory=list)
    changes: dict[int, Location] = field(default_factory=dict)
    runs: list[InsertRun] = field(default_factory=list)

    def run_location(self, record_id: int) -> Location | None:
        """Location of an id inserted by a run of this plan."""
        for run in self.runs:
            n = record_id - run.first_id
            if 0 <= n < len(run.positions):
                return Location(run.file_nr, run.positions[n])
        return None

    def run_info(self, loc: Location) -> RecordInfo | None:
        """Length and previous location of a record planned in a run."""
        for run in self.runs:
            off = loc.position - run.start
            if run.file_nr == loc.file_nr and 0 <= off < len(run.blob):
                header = unpack_header(run.blob[off : off + HEADER_LEN])
                return header.length, header.prev
        return None


Lookup = Callable[[int], Location]
ReadInfo = Callable[[Location], RecordInfo | None]


def check_id(layout: Layout, record_id: int) -> None:
    """Refuse ids without a slot, with real integers (spec §11 #10)."""
    if not 0 <= record_id < layout.record_nr_max:
        raise InvalidIdError(
            f"id {record_id} is out of range 0..{layout.record_nr_max - 1} (index out of bounds)"
        )


def plausible_prev(prev: Location, loc: Location) -> bool:
    """An older version is always stored before the newer one."""
    if prev.is_null:
        return prev.file_nr == 0
    if prev.file_nr != loc.file_nr:
        return prev.file_nr < loc.file_nr
    return prev.position + HEADER_LEN <= loc.position


class Planner:
    """Plans groups of requests; a group that fails leaves no trace in the plan."""

    def __init__(self, layout: Layout, lookup: Lookup, read_info: ReadInfo) -> None:
        self.layout = layout
        self._lookup = lookup
        self._read_info = read_info
        self._plan = Plan()

    def plan(self, groups: list[list[Request]], state: WriterState) -> tuple[Plan, WriterState]:
        """Plan every group in order; returns the plan and the state after it."""
        out = Plan()
        self._plan = out
        planned: dict[Location, RecordInfo] = {}
        for group in groups:
            trial = replace(state)
            local: dict[int, Location] = {}
            seen: dict[Location, RecordInfo] = {}
            ops: list[Op] = []
            view = ChainMap(seen, planned)
            appends: dict[int, list[tuple[int, bytes]]] = {}
            inserts = [req for req in group if type(req) is SetRequest and req.record_id is None]
            try:
                if self.layout.incremental and len(inserts) == len(group):
                    ids = self._inserts(inserts, trial, ops, appends)
                else:
                    ids = [
                        self._one(req, trial, local, out.changes, view, ops, appends)
                        for req in group
                    ]
            except OurDBError as exc:
                out.results.append(exc)
                continue
            state = trial
            out.results.append(ids)
            out.ops.extend(ops)
            out.changes.update(local)
            for op in ops:
                if isinstance(op, InsertRun):
                    out.runs.append(op)
            for file_nr, chunks in appends.items():
                _, parts = out.appends.setdefault(file_nr, (chunks[0][0], []))
                parts.extend(chunk for _, chunk in chunks)
            planned.update(seen)
        return out, state

    def _current(
        self, record_id: int, local: dict[int, Location], shared: dict[int, Location]
    ) -> Location:
        if record_id in local:
            return local[record_id]
        if record_id in shared:
            return shared[record_id]
        in_run = self._plan.run_location(record_id) if self._plan.runs else None
        return in_run if in_run is not None else self._lookup(record_id)

    def _one(
        self,
        req: Request,
        st: WriterState,
        local: dict[int, Location],
        shared: dict[int, Location],
        planned: ChainMap[Location, RecordInfo],
        ops: list[Op],
        appends: dict[int, list[tuple[int, bytes]]],
    ) -> int:
        lay = self.layout
        if isinstance(req, DeleteRequest):
            check_id(lay, req.record_id)
            current = self._current(req.record_id, local, shared)
            if current.is_null:
                raise RecordNotFoundError(req.record_id)
            regions = self._chain(current, req.erase_history, planned)
            ops.append(DeleteOp(req.record_id, regions))
            local[req.record_id] = NULL_LOCATION
            return req.record_id
        if len(req.data) > MAX_PAYLOAD:
            raise PayloadTooLargeError(len(req.data), MAX_PAYLOAD)
        if req.record_id is None:
            if not lay.incremental:
                raise InvalidIdError("id must be provided when incremental is disabled")
            record_id = st.next_id
            if record_id >= lay.record_nr_max:
                raise DatabaseFullError(f"lookup table is full ({lay.record_nr_max} slots)")
            prev = NULL_LOCATION
            st.next_id += 1
        else:
            record_id = req.record_id
            check_id(lay, record_id)
            prev = self._current(record_id, local, shared)
            if lay.incremental and prev.is_null and not (req.restore and record_id < st.next_id):
                raise InvalidIdError(
                    f"id {record_id} has no record: cannot set id for insertions "
                    "when incremental mode is enabled"
                )
        if st.cur_end >= lay.file_size:
            if st.cur_file >= MAX_FILE_NR:
                raise DatabaseFullError(f"data file {st.cur_file}.db is the last one allowed")
            st.cur_file += 1
            st.cur_end = FIRST_POSITION
            appends.setdefault(st.cur_file, []).append((0, FILE_START))
        loc = Location(st.cur_file, st.cur_end)
        if not entry_fits(loc, lay.keysize):
            raise LocationOverflowError(
                f"record {record_id} would be stored in {loc.file_nr}.db at offset "
                f"{loc.position}, which keysize {lay.keysize} cannot address"
            )
        record = record_bytes(req.data, prev)
        appends.setdefault(st.cur_file, []).append((st.cur_end, record))
        st.cur_end += len(record)
        st.id_limit = max(st.id_limit, record_id + 1)
        local[record_id] = loc
        ops.append(SetOp(record_id, loc, record))
        planned[loc] = (len(req.data), prev)
        return record_id

    def _inserts(
        self,
        group: list[SetRequest],
        st: WriterState,
        ops: list[Op],
        appends: dict[int, list[tuple[int, bytes]]],
    ) -> list[int]:
        """Fast path for a group of new records: one InsertRun per data file touched."""
        lay = self.layout
        first = st.next_id
        if first + len(group) > lay.record_nr_max:
            raise DatabaseFullError(f"lookup table is full ({lay.record_nr_max} slots)")
        pack, crc = _NULL_PREV_HEADER.pack, zlib.crc32
        limit = 1 << (8 * lay.keysize) if lay.keysize < 6 else 1 << 32
        run_first, run_start = first, st.cur_end
        positions: list[int] = []
        parts: list[bytes] = []

        def close_run() -> None:
            if positions:
                blob = b"".join(parts)
                ops.append(InsertRun(run_first, st.cur_file, run_start, positions, blob))
                appends.setdefault(st.cur_file, []).append((run_start, blob))

        for n, req in enumerate(group):
            data = req.data
            if len(data) > MAX_PAYLOAD:
                raise PayloadTooLargeError(len(data), MAX_PAYLOAD)
            if st.cur_end >= lay.file_size:
                close_run()
                if st.cur_file >= MAX_FILE_NR:
                    raise DatabaseFullError(f"data file {st.cur_file}.db is the last one allowed")
                st.cur_file += 1
                st.cur_end = FIRST_POSITION
                appends.setdefault(st.cur_file, []).append((0, FILE_START))
                run_first, run_start, positions, parts = first + n, st.cur_end, [], []
            if st.cur_end >= limit or (lay.keysize < 6 and st.cur_file > 0):
                raise LocationOverflowError(
                    f"record {first + n} would be stored in {st.cur_file}.db at offset "
                    f"{st.cur_end}, which keysize {lay.keysize} cannot address"
                )
            positions.append(st.cur_end)
            parts.append(pack(len(data), crc(data)))
            parts.append(data)
            st.cur_end += HEADER_LEN + len(data)
        close_run()
        st.next_id = first + len(group)
        st.id_limit = max(st.id_limit, st.next_id)
        return list(range(first, st.next_id))

    def _chain(
        self, loc: Location, erase_history: bool, planned: ChainMap[Location, RecordInfo]
    ) -> list[tuple[Location, int]]:
        regions: list[tuple[Location, int]] = []
        while not loc.is_null:
            info = planned.get(loc) or self._plan.run_info(loc) or self._read_info(loc)
            if info is None:
                break
            length, prev = info
            regions.append((loc, length))
            if not erase_history or not plausible_prev(prev, loc):
                break
            loc = prev
        return regions
