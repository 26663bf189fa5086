"""The one wire form of a job: the JSON that the CLI, HTTP, SSE and inbox result files carry."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from itertools import compress
from operator import ne
from typing import Any

from core.api.views import JobView, LimitsView, ScheduleView
from core.events.shapes import JobFilter, JobSpec

WIRE_FIELDS = tuple(f.name for f in dataclasses.fields(JobView))
_VIEW_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(JobView) if f.default is not dataclasses.MISSING
}
_REQUIRED_VIEW_FIELDS = frozenset(WIRE_FIELDS) - _VIEW_DEFAULTS.keys()
SPEC_FIELDS = {f.name: f for f in dataclasses.fields(JobSpec)}
_SPEC_NAMES = frozenset(SPEC_FIELDS)
SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(ScheduleView))
LIMITS_FIELDS = tuple(f.name for f in dataclasses.fields(LimitsView))


def job_wire(view: JobView) -> dict[str, Any]:
    """A job as JSON-ready data (no session key: views never carry it)."""
    # A view's fields are flat values: a shallow copy is enough, and many times faster
    # than dataclasses.asdict's recursive deep copy (batches of 1,000 jobs go through it).
    record = vars(view)  # read as a dict: a getattr per field was most of the cost
    data = {name: record[name] for name in WIRE_FIELDS}
    data["log_lines"] = list(view.log_lines)
    data["depends_on"] = list(view.depends_on)
    data["wait_for"] = list(view.wait_for)
    return data


def job_from_wire(data: dict[str, Any]) -> JobView:
    """A view back from its wire form; unknown keys (from a newer engine) are ignored."""
    known = {name: data[name] for name in WIRE_FIELDS if name in data}
    known["log_lines"] = tuple(known.get("log_lines", ()))
    for name in ("depends_on", "wait_for"):
        if name in known:
            known[name] = tuple(known[name])
    missing = _REQUIRED_VIEW_FIELDS - known.keys()
    if missing:  # what JobView(**known) would say, without its 37 frozen setattrs
        raise TypeError(f"a job's data lacks {', '.join(sorted(missing))}")
    return JobView.from_fields({**_VIEW_DEFAULTS, **known})


# View fields that are tuples (JSON arrays on the wire), and the others.
_TUPLE_FIELDS = frozenset({"log_lines", "depends_on", "wait_for"})
_FLAT_FIELDS = frozenset(WIRE_FIELDS) - _TUPLE_FIELDS


def views_delta(views: Sequence[JobView]) -> dict[str, Any]:
    """A batch's views in short: the first in full, each other one as what differs from it.

    A batch of one script differs in little more than ids and times, so this is a
    fraction of the full list to encode, send and decode. `views_from_delta` reads it.
    """
    if not views:
        return {"first": None, "rest": []}
    base = vars(views[0])
    rest = [{k: v for k, v in vars(view).items() if v != base[k]} for view in views[1:]]
    return {"first": job_wire(views[0]), "rest": rest}


# A job record's fields that a view has in another form (or name), and how to make it.
_VIEW_FORMS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "circle_id": ("circle", str),
    "status": ("status", str),  # the StrEnum's value
    "params_type": ("params_type", str),
    "log_lines": ("log_lines", tuple),
    "depends_on": ("depends_on", tuple),
    "wait_for": ("wait_for", lambda waits: tuple(int(i) for i in waits.split(",") if i)),
    "on_parent_error": ("on_parent_error", lambda value: value or "fail"),
}
# The record's fields that a view has as they are.
_SAME_FIELDS = frozenset(WIRE_FIELDS) - {"circle", "duplicate", *_VIEW_FORMS}


def jobs_delta(made: Sequence[tuple[Any, bool]]) -> dict[str, Any]:
    """`views_delta` of a submit's answer, straight from its jobs (core.jobs.Job records).

    `made` is each job with whether it is new (an existing one is a `duplicate`). The
    views of a big batch were made only to be compared: this compares each record's
    fields with the first one's, and makes the view of the first alone.
    """
    if not made:
        return {"first": None, "rest": []}
    first_job, first_new = made[0]
    base = first_job.__dict__
    names = tuple(base)
    base_values = tuple(base.values())
    rest = []
    for job, new in made[1:]:
        record = job.__dict__
        # The fields compared in C (map of `ne`): a loop over ~40 fields per job in
        # Python was a tenth of a 1,000-job submit's time on the loop.
        changed: Iterable[tuple[str, Any]]
        if tuple(record) == names:
            changed = compress(record.items(), map(ne, record.values(), base_values))
        else:  # never for records made by the Job class; kept for a changed one
            changed = ((n, v) for n, v in record.items() if v != base.get(n, v))
        delta: dict[str, Any] = {}
        for name, value in changed:
            if name in _SAME_FIELDS:
                delta[name] = value
            elif name in _VIEW_FORMS:
                view_name, form = _VIEW_FORMS[name]
                delta[view_name] = form(value)
        if new != first_new:
            delta["duplicate"] = not new
        rest.append(delta)
    return {"first": job_wire(JobView.of(first_job, duplicate=not first_new)), "rest": rest}


def views_from_delta(data: dict[str, Any]) -> list[JobView]:
    """The views `views_delta` sent; keys this version does not know are ignored."""
    if data.get("first") is None:
        return []
    first = job_from_wire(data["first"])
    base = vars(first)
    views = [first]
    for delta in data["rest"]:
        if delta.keys() <= _FLAT_FIELDS:  # the usual: ids, times, params
            views.append(JobView.from_fields({**base, **delta}))
            continue
        values = dict(base)
        for name, value in delta.items():
            if name in base:
                values[name] = tuple(value) if name in _TUPLE_FIELDS else value
        views.append(JobView.from_fields(values))
    return views


# Timing, retry and priority fields, sent only when set: an engine from before them
# refuses a batch item with a key it does not know.
_LIFECYCLE_FIELDS = (
    "delay",
    "run_at",
    "retries",
    "backoff",
    "backoff_base",
    "backoff_max",
    "retry_on",
    "priority",
)


# Unique-job and dependency fields, likewise sent only when set.
_GRAPH_FIELDS = ("unique_key", "unique_for", "depends_on", "on_parent_error", "name")
_SENT_WHEN_SET = tuple(
    (name, SPEC_FIELDS[name].default) for name in (*_LIFECYCLE_FIELDS, *_GRAPH_FIELDS)
)
# The fields of most specs: one with only these needs none of the further checks.
_PLAIN_FIELDS = frozenset({"params", "topic", "circle", "params_type", "timeout", "log"})
_SPEC_DEFAULTS = {
    name: f.default for name, f in SPEC_FIELDS.items() if f.default is not dataclasses.MISSING
}
MAX_UNIQUE_KEY = 200
MAX_PARENTS = 100


def spec_wire(spec: JobSpec) -> dict[str, Any]:
    """A job spec as JSON-ready data (a submit request's args, a batch's item)."""
    data = dict(vars(spec))  # its fields, in order: a spec is a plain frozen dataclass
    for name, value in data.items():
        # JSON has no NaN or infinity (orjson writes null): say so here, by name.
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    for name, default in _SENT_WHEN_SET:
        if data[name] == default:
            del data[name]
    if "retry_on" in data:
        data["retry_on"] = list(data["retry_on"])
    if "depends_on" in data:
        data["depends_on"] = list(data["depends_on"])
    return data


def _graph_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The unique-job and dependency fields of a wire spec, type-checked."""
    out: dict[str, Any] = {}
    for name in ("unique_key", "on_parent_error", "name"):
        if name in data and not isinstance(data[name], str):
            raise ValueError(f"{name} must be a string, got {type(data[name]).__name__}")
    unique_for = data.get("unique_for")
    if unique_for is not None:
        if isinstance(unique_for, bool) or not isinstance(unique_for, int | float):
            raise ValueError(f"unique_for must be a number, got {unique_for!r}")
        out["unique_for"] = float(unique_for)
    parents = data.get("depends_on")
    if parents is not None:
        if not isinstance(parents, list | tuple) or len(parents) > MAX_PARENTS:
            raise ValueError(f"depends_on must be a list of at most {MAX_PARENTS} job ids or names")
        for parent in parents:
            if isinstance(parent, bool) or not isinstance(parent, int | str):
                raise ValueError(f"depends_on: {parent!r} is neither a job id nor a name")
        out["depends_on"] = tuple(parents)
    return out


def spec_from_wire(data: object) -> JobSpec:
    """A spec back from its wire form; raises ValueError naming the first bad field.

    Unlike a view, a spec is strict: an unknown key is a mistake of the caller's, not a
    newer engine's addition, and it would otherwise be silently dropped.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a job must be an object, got {type(data).__name__}")
    unknown = data.keys() - _SPEC_NAMES
    if unknown:
        first = sorted(unknown)[0]
        raise ValueError(f"unknown field {first!r}; known: {', '.join(SPEC_FIELDS)}")
    if "params" not in data:
        raise ValueError("params is required")
    for name in ("params", "topic", "circle", "params_type"):
        if name in data and not isinstance(data[name], str):
            raise ValueError(f"{name} must be a string, got {type(data[name]).__name__}")
    timeout = data.get("timeout", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ValueError(f"timeout must be a number, got {timeout!r}")
    if "log" in data and not isinstance(data["log"], bool):
        raise ValueError(f"log must be true or false, got {data['log']!r}")
    if data.keys() <= _PLAIN_FIELDS:
        return _spec({**data, "timeout": float(timeout)})
    numbers: dict[str, Any] = {"timeout": float(timeout)}
    for name in ("delay", "run_at", "backoff_base", "backoff_max"):
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        numbers[name] = float(value)
    retries = data.get("retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
        raise ValueError(f"retries must be a whole number, got {retries!r}")
    priority = data.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise ValueError(f"priority must be a whole number from 0 to 9, got {priority!r}")
    if data.get("backoff") is not None and not isinstance(data["backoff"], str):
        raise ValueError(f"backoff must be a string, got {data['backoff']!r}")
    retry_on = data.get("retry_on")
    if retry_on is not None:
        if not isinstance(retry_on, list | tuple) or not all(isinstance(k, str) for k in retry_on):
            raise ValueError(f"retry_on must be a list of error kinds, got {retry_on!r}")
        numbers["retry_on"] = tuple(retry_on)
    if "delay" in numbers and numbers["delay"] < 0:
        raise ValueError("delay must not be negative")
    return _spec({**data, **numbers, **_graph_fields(data)})


def _spec(values: dict[str, Any]) -> JobSpec:
    """`JobSpec(**values)` for values checked already, known fields only.

    Without the frozen __init__'s setattr per field, most of a spec's cost when a
    batch of 1,000 is read: frozen guards setattr, not the instance dict.
    """
    spec = object.__new__(JobSpec)
    spec.__dict__.update(_SPEC_DEFAULTS)
    spec.__dict__.update(values)
    return spec


def spec_with_params(spec: JobSpec, params: str) -> JobSpec:
    """`spec` (checked already) with other params: a batch item sent as its params alone."""
    other = object.__new__(JobSpec)
    other.__dict__.update(spec.__dict__)
    other.__dict__["params"] = params
    return other


def filter_wire(flt: JobFilter) -> dict[str, Any]:
    """A filter as JSON-ready data (the args of a `jobs` or `requeue_many` request)."""
    return {f.name: getattr(flt, f.name) for f in dataclasses.fields(flt)}


def schedule_wire(view: ScheduleView) -> dict[str, Any]:
    """A schedule as JSON-ready data (what `heroagent schedule list` and the HTTP API show)."""
    return dataclasses.asdict(view)


def schedule_from_wire(data: dict[str, Any]) -> ScheduleView:
    """A schedule view back from its wire form; unknown keys (a newer engine's) are ignored."""
    return ScheduleView(**{name: data[name] for name in SCHEDULE_FIELDS if name in data})


def limits_wire(view: LimitsView) -> dict[str, Any]:
    """A queue's limits as JSON-ready data."""
    return dataclasses.asdict(view)


def limits_from_wire(data: dict[str, Any]) -> LimitsView:
    """A limits view back from its wire form; unknown keys (a newer engine's) are ignored."""
    return LimitsView(**{name: data[name] for name in LIMITS_FIELDS if name in data})
