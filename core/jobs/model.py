"""The job record: its fields, statuses, and its JSON (OurDB) and hash (Redis) forms."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import orjson

_T = TypeVar("_T")
# A batch of this many jobs or more is encoded in a thread (about 10 us a job): hundreds
# encoded on the loop would hold up whatever shares it (the terminal app's keys, for a
# fraction of a second per 1,000-job submit). A small one stays inline, where the hop
# would cost more than the work.
ENCODE_INLINE_BELOW = 100


async def encoded(count: int, encode: Callable[[], _T]) -> _T:
    """`encode()` for a batch of `count` jobs: inline when small, in a thread when big.

    `encode` must only read jobs no other task changes meanwhile (a batch's own).
    """
    if count < ENCODE_INLINE_BELOW:
        return encode()
    return await asyncio.to_thread(encode)


class JobStatus(StrEnum):
    """Where a job is in its life."""

    NEW = "new"
    # Waiting for a time (a delay, or a retry's backoff) in the scheduled sorted set.
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    DONE = "done"
    ERROR = "error"

    @property
    def ended(self) -> bool:
        """True for the two final states."""
        return self in (JobStatus.DONE, JobStatus.ERROR)


class ErrorKind(StrEnum):
    """Why an attempt ended in error; decides whether it is retried."""

    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    WORKER_LOST = "worker_lost"
    DEPENDENCY_FAILED = "dependency_failed"


# Kinds retried when a job's `retry_on` is empty; cancelled never is.
DEFAULT_RETRY_ON = ("failed", "timeout", "worker_lost")
# Kinds that make an ended error a dead letter (cancelled is a decision, not a failure).
DEAD_KINDS = ("failed", "timeout", "worker_lost", "dependency_failed")
BACKOFFS = ("fixed", "exponential")


class ParamsType(StrEnum):
    """How a job's params are run."""

    HEROSCRIPT = "heroscript"
    RHAISCRIPT = "rhaiscript"
    OPENRPC = "openrpc"
    AI = "ai"


# Circle and topic become parts of Redis keys: keep them to a safe alphabet.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class Job:
    """One job. Every change becomes a new OurDB version of this record."""

    job_id: int
    topic: str
    params: str
    circle_id: str = "default"
    params_type: ParamsType = ParamsType.HEROSCRIPT
    status: JobStatus = JobStatus.NEW
    timeout: float = 60.0
    session_key: str = ""
    time_scheduled: float = 0.0
    time_start: float = 0.0
    time_end: float = 0.0
    error: str = ""
    result: str = ""
    log: bool = False
    attempts: int = 0
    worker: str = ""
    log_lines: list[str] = field(default_factory=list)
    # Set when the result was too large for one OurDB record and lives in a file instead.
    result_file: str = ""
    # The schedule that fired this job and the fire time it was made for (empty: by hand).
    schedule: str = ""
    fire_time: float = 0.0
    # When the job is (or its last attempt was) due, epoch seconds; 0: never waited for one.
    run_at: float = 0.0
    # Why the last attempt ended in error (an ErrorKind value); empty otherwise.
    error_kind: str = ""
    # The retry policy, resolved at submit so a remote worker needs nothing else.
    retries: int = 0
    backoff: str = "fixed"
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    # Comma-separated kinds that are retried; empty means DEFAULT_RETRY_ON.
    retry_on: str = ""
    # The last progress the running attempt reported (0..1) and its message; None: none.
    progress: float | None = None
    progress_message: str = ""
    # 0-9, higher first: the level of its queue it waits in (FIFO within a level).
    priority: int = 0
    # While a job with this key is not ended (and `unique_for` seconds after), submitting
    # the same key in its circle/topic answers with this job instead of a new one.
    unique_key: str = ""
    unique_for: float = 0.0
    # Parent job ids that must be done before this one runs (kept durably for
    # reconciliation); "run" in `on_parent_error` runs it even when a parent failed.
    depends_on: list[int] = field(default_factory=list)
    on_parent_error: str = ""
    # While it waits for parents: their ids, comma-separated (empty once released).
    wait_for: str = ""
    # The job's name in the graph it was submitted with (empty outside a graph).
    name: str = ""
    # Taken (incremented) by every transition, on the job's hash, in the same atomic step
    # as the change; a version carries the revision of the state it shows, so the history
    # can be kept in the order the changes happened whichever path stored them.
    revision: int = 0

    @property
    def queue(self) -> str:
        """The "<circle>:<topic>" queue name."""
        return f"{self.circle_id}:{self.topic}"

    @property
    def waiting(self) -> bool:
        """Held back until its parents are done (in Redis, not in a queue or the time set)."""
        return self.status is JobStatus.SCHEDULED and bool(self.wait_for)

    @property
    def dead(self) -> bool:
        """A dead letter: it ended in error after its last allowed attempt."""
        return self.status is JobStatus.ERROR and self.error_kind in DEAD_KINDS

    def retryable(self, kind: str) -> bool:
        """Whether an attempt that ended with this kind may be tried again."""
        kinds = [k for k in self.retry_on.split(",") if k] or list(DEFAULT_RETRY_ON)
        return kind != ErrorKind.CANCELLED and kind in kinds

    def to_json(self) -> bytes:
        """Compact JSON for OurDB: the id is the record's key, and defaults are left out."""
        return orjson.dumps(self.set_fields())

    def set_fields(self) -> dict[str, Any]:
        """The fields both stored forms carry: all but the id, those at their default left out.

        `to_json` and `hash_fields` are this, encoded; a new job's two come from one call.
        """
        # Over the instance dict (in field order), not a getattr per field: every job
        # of a submit and every version the persister writes comes through here.
        return {
            name: value
            for name, value in self.__dict__.items()
            if name in _ALWAYS or (name != "job_id" and value != _DEFAULTS[name])
        }

    @classmethod
    def from_json(cls, raw: bytes | str, job_id: int) -> Job:
        """Read a version back from OurDB."""
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"job {job_id}: the record is not a JSON object")
        data["job_id"] = job_id
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """Build from a dict, ignoring keys this version does not know."""
        job = cls(**{k: v for k, v in data.items() if k in _FIELD_NAMES})
        job.params_type = ParamsType(job.params_type)
        job.status = JobStatus(job.status)
        return job

    def to_hash(self) -> dict[str, str]:
        """The Redis hash form: flat strings, so `HGETALL` reads well.

        A field at its default is left out (it reads back as that default), as OurDB's
        record leaves it out: a new job's hash is a handful of fields, not thirty, which
        is most of what the server does to store it.
        """
        return {"job_id": str(self.job_id), **self.hash_fields()}

    def hash_fields(self) -> dict[str, str]:
        """`to_hash` without the id: what a job stored under an id not known yet carries."""
        return hash_strings(self.set_fields())

    @classmethod
    def from_hash(cls, raw: Mapping[bytes, bytes] | Mapping[str, str] | Mapping[Any, Any]) -> Job:
        """Read a job back from its Redis hash (fields it does not know are ignored)."""
        data: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else key
            read = _FROM_TEXT.get(name)
            if read is not None:
                data[name] = read(value.decode() if isinstance(value, bytes) else value)
        return cls.from_dict(data)

    @classmethod
    def from_stream(cls, fields: Mapping[bytes, bytes]) -> Job:
        """Read a version from a stream entry (bytes field names and values), as `from_hash`.

        The persister reads up to a thousand per batch, so this is `from_hash` without its
        per-field type tests and str round trips: names are looked up as bytes, and
        numbers, statuses and lists parse straight from the bytes.
        """
        if b"job_id" not in fields or b"topic" not in fields or b"params" not in fields:
            # Not a job: the constructor says what is missing.
            return cls(**{_FROM_BYTES[k][0]: _FROM_BYTES[k][1](v) for k, v in fields.items()})
        # The defaults, then what the entry has, into the instance dict at once: the
        # dataclass constructor (forty keywords) was half the cost. The copy keeps the
        # field order, which `to_json` writes in; the statuses read as their enums.
        data = _STREAM_DEFAULTS.copy()
        data["log_lines"] = []
        data["depends_on"] = []
        get = _FROM_BYTES.get
        for key, value in fields.items():
            known = get(key)
            if known is not None:
                name, read = known
                data[name] = read(value)
        job = object.__new__(cls)
        job.__dict__ = data
        return job


def compact_json(value: object) -> bytes:
    """Compact JSON as UTF-8, for a job's result or a script argument.

    Text with lone surrogates (an action's result may hold them; UTF-8 cannot) goes with
    them replaced: an outcome that cannot be sent would hold its job for ever.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text.encode(errors="replace")


def hash_strings(fields: Mapping[str, Any]) -> dict[str, str]:
    """A job's `set_fields` as its hash's strings."""
    # Dispatch on the exact type: a submit of 1,000 jobs makes 1,000 of these.
    out: dict[str, str] = {}
    for name, value in fields.items():
        kind = type(value)
        if kind is str:
            out[name] = value
        elif kind is float:
            out[name] = repr(value)
        elif kind is bool:
            out[name] = "1" if value else "0"
        elif kind is list:
            out[name] = orjson.dumps(value).decode()
        elif isinstance(value, StrEnum):
            out[name] = str(value)  # its value, without Enum.value's cost
        elif isinstance(value, float):
            out[name] = repr(value)
        else:
            out[name] = str(value)
    return out


DAMAGED_PREFIX = "damaged record: "


def damaged_job(job_id: int, reason: str) -> Job:
    """What a version that cannot be read shows as: only its id and what is wrong.

    Its circle, topic and params are unknown, so they are left empty rather than guessed;
    the status is error, since the job's real state cannot be told.
    """
    return Job(
        job_id=job_id,
        topic="",
        params="",
        circle_id="",
        status=JobStatus.ERROR,
        error=DAMAGED_PREFIX + reason,
    )


def is_damaged(job: Job) -> bool:
    """True for a job made by `damaged_job`."""
    return not job.topic and job.error.startswith(DAMAGED_PREFIX)


# Fields every OurDB version carries even at their defaults, so a version reads alone.
_ALWAYS = frozenset({"topic", "circle_id", "params_type", "status", "params"})
_DEFAULTS: dict[str, Any] = {
    f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    for f in dataclasses.fields(Job)
    if f.name != "job_id"
}
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Job))


def _list(text: str) -> list[str]:
    return list(orjson.loads(text)) if text else []


# How each field reads back from its hash string; the rest stay strings.
_FROM_TEXT: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(_FIELD_NAMES, str),
    "job_id": int,
    "attempts": int,
    "retries": int,
    "priority": int,
    "revision": int,
    "timeout": float,
    "run_at": float,
    "backoff_base": float,
    "backoff_max": float,
    "time_scheduled": float,
    "time_start": float,
    "time_end": float,
    "fire_time": float,
    "progress": float,
    "unique_for": float,
    "depends_on": _list,
    "log": lambda text: text == "1",
    "log_lines": _list,
}


def _enum_reader(kind: type[StrEnum]) -> Callable[[bytes], Any]:
    members = {member.value.encode(): member for member in kind}

    def read(raw: bytes) -> Any:
        member = members.get(raw)
        return member if member is not None else kind(raw.decode())

    return read


def _bytes_reader(read: Callable[[str], Any]) -> Callable[[bytes], Any]:
    """The bytes form of a `_FROM_TEXT` reader: int and float take bytes as they are."""
    if read is str:
        return bytes.decode
    if read is int or read is float:
        return read
    return lambda raw: read(raw.decode())


# `_FROM_TEXT` keyed and fed by bytes, for `Job.from_stream`.
_FROM_BYTES: dict[bytes, tuple[str, Callable[[bytes], Any]]] = {
    name.encode(): (name, _bytes_reader(read)) for name, read in _FROM_TEXT.items()
}
_FROM_BYTES[b"status"] = ("status", _enum_reader(JobStatus))
_FROM_BYTES[b"params_type"] = ("params_type", _enum_reader(ParamsType))
_FROM_BYTES[b"log_lines"] = ("log_lines", lambda raw: list(orjson.loads(raw)) if raw else [])
_FROM_BYTES[b"depends_on"] = ("depends_on", lambda raw: list(orjson.loads(raw)) if raw else [])
# Every field at its default, in field order (the id first), for `Job.from_stream`; the
# lists are replaced by fresh ones for each job.
_STREAM_DEFAULTS: dict[str, Any] = {"job_id": 0, **_DEFAULTS}

# What an end writes over on a job's hash, in the order COMPLETE reads it first. A job
# whose `active` version was not reported while it ran (a short one) has that version
# ride on its end's stream entry: the field ACTIVE_WAS holds these values as a JSON
# array (false for a field the hash lacked), and `active_before` puts them back.
ACTIVE_WAS = "active_was"
OVERWRITTEN_BY_END = (
    "revision",
    "result",
    "error",
    "time_end",
    "log_lines",
    "error_kind",
    "run_at",
)

# Each of those fields: its name, how its hash text reads, its default, and whether that
# is a list (each version gets a fresh one).
_WAS_FIELDS = tuple(
    (name, _FROM_TEXT[name], _DEFAULTS[name], isinstance(_DEFAULTS[name], list))
    for name in OVERWRITTEN_BY_END
)


def active_before(end: Job, was: bytes) -> Job:
    """The `active` version an end's stream entry carries: the end, its changes undone."""
    values = orjson.loads(was)
    if not isinstance(values, list) or len(values) != len(OVERWRITTEN_BY_END):
        raise ValueError(
            f"job {end.job_id}: {ACTIVE_WAS} is not a list of {len(OVERWRITTEN_BY_END)} values"
        )
    data = end.__dict__.copy()
    data["status"] = JobStatus.ACTIVE
    data["depends_on"] = list(end.depends_on)
    # The persister makes one of these per short job: no type tests on the way.
    for (name, read, default, is_list), value in zip(_WAS_FIELDS, values, strict=True):
        if value.__class__ is str:
            data[name] = read(value)
        else:
            data[name] = [] if is_list else default
    job = object.__new__(Job)
    job.__dict__ = data
    return job
