"""The engine's one door: EngineAPI, its frozen views, JobFilter, typed errors and the wire form.

Importing this package loads no engine part: front ends can import it alone.
"""

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
from core.events import JobFilter, JobOptions, JobSpec, ScheduleOptions

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
