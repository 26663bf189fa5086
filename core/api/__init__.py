"""The engine's one door: EngineAPI, its frozen views, JobFilter, typed errors and the wire form.

Importing this package loads no engine part: front ends can import it alone. Its names
load on first use, each from its own module, so the client library takes the views,
errors and wire form without EngineAPI (and the event classes it needs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.api.engine_api import EngineAPI, ServiceHost
    from core.api.errors import (
        EngineError,
        EngineUnavailable,
        JobEnded,
        JobNotEnded,
        JobNotFound,
        JobRefused,
        ScheduleNotFound,
    )
    from core.api.views import (
        ActionView,
        HealthView,
        HighlightSpan,
        JobView,
        LimitsView,
        Problem,
        QueueView,
        RedisView,
        ScheduleView,
        ServiceState,
        ServiceStatus,
        WorkerView,
    )
    from core.api.wire import (
        filter_wire,
        job_from_wire,
        job_wire,
        limits_from_wire,
        limits_wire,
        schedule_from_wire,
        schedule_wire,
        spec_from_wire,
        spec_wire,
        views_delta,
        views_from_delta,
    )
    from core.shapes import JobFilter, JobOptions, JobSpec, ScheduleOptions

_WHERE = {
    "ActionView": "core.api.views",
    "EngineAPI": "core.api.engine_api",
    "EngineError": "core.api.errors",
    "EngineUnavailable": "core.api.errors",
    "HealthView": "core.api.views",
    "HighlightSpan": "core.api.views",
    "JobEnded": "core.api.errors",
    "JobFilter": "core.shapes",
    "JobNotEnded": "core.api.errors",
    "JobNotFound": "core.api.errors",
    "JobOptions": "core.shapes",
    "JobRefused": "core.api.errors",
    "JobSpec": "core.shapes",
    "JobView": "core.api.views",
    "LimitsView": "core.api.views",
    "Problem": "core.api.views",
    "QueueView": "core.api.views",
    "RedisView": "core.api.views",
    "ScheduleNotFound": "core.api.errors",
    "ScheduleOptions": "core.shapes",
    "ScheduleView": "core.api.views",
    "ServiceHost": "core.api.engine_api",
    "ServiceState": "core.api.views",
    "ServiceStatus": "core.api.views",
    "WorkerView": "core.api.views",
    "filter_wire": "core.api.wire",
    "job_from_wire": "core.api.wire",
    "job_wire": "core.api.wire",
    "limits_from_wire": "core.api.wire",
    "limits_wire": "core.api.wire",
    "schedule_from_wire": "core.api.wire",
    "schedule_wire": "core.api.wire",
    "spec_from_wire": "core.api.wire",
    "spec_wire": "core.api.wire",
    "views_delta": "core.api.wire",
    "views_from_delta": "core.api.wire",
}

__all__ = [
    "ActionView",
    "EngineAPI",
    "EngineError",
    "EngineUnavailable",
    "HealthView",
    "HighlightSpan",
    "JobEnded",
    "JobFilter",
    "JobNotEnded",
    "JobNotFound",
    "JobOptions",
    "JobRefused",
    "JobSpec",
    "JobView",
    "LimitsView",
    "Problem",
    "QueueView",
    "RedisView",
    "ScheduleNotFound",
    "ScheduleOptions",
    "ScheduleView",
    "ServiceHost",
    "ServiceState",
    "ServiceStatus",
    "WorkerView",
    "filter_wire",
    "job_from_wire",
    "job_wire",
    "limits_from_wire",
    "limits_wire",
    "schedule_from_wire",
    "schedule_wire",
    "spec_from_wire",
    "spec_wire",
    "views_delta",
    "views_from_delta",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # once found, a plain attribute
    return value
