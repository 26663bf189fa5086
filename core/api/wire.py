"""The one wire form of a job: the JSON that the CLI, HTTP, SSE and inbox result files carry."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.api.views import JobView

WIRE_FIELDS = tuple(f.name for f in dataclasses.fields(JobView))


def job_wire(view: JobView) -> dict[str, Any]:
    """A job as JSON-ready data (no session key: views never carry it)."""
    data = dataclasses.asdict(view)
    data["log_lines"] = list(view.log_lines)
    return data


def job_from_wire(data: dict[str, Any]) -> JobView:
    """A view back from its wire form; unknown keys (from a newer engine) are ignored."""
    known = {name: data[name] for name in WIRE_FIELDS if name in data}
    known["log_lines"] = tuple(known.get("log_lines", ()))
    return JobView(**known)
