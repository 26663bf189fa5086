"""The engine's one door: EngineAPI, its frozen views, JobFilter, typed errors and the wire form.

Importing this package loads no engine part: front ends can import it alone. The views,
errors, wire form and shapes load with it (the client library needs them all); EngineAPI
loads on first use, since it brings the event bus and asyncio, which the client does without.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.api.errors import EngineError as EngineError
from core.api.errors import EngineUnavailable as EngineUnavailable
from core.api.errors import JobEnded as JobEnded
from core.api.errors import JobNotEnded as JobNotEnded
from core.api.errors import JobNotFound as JobNotFound
from core.api.errors import JobRefused as JobRefused
from core.api.errors import ScheduleNotFound as ScheduleNotFound
from core.api.lazy import lazy_attributes
from core.api.views import ActionView as ActionView
from core.api.views import HealthView as HealthView
from core.api.views import HighlightSpan as HighlightSpan
from core.api.views import JobView as JobView
from core.api.views import LimitsView as LimitsView
from core.api.views import Problem as Problem
from core.api.views import QueueView as QueueView
from core.api.views import RedisView as RedisView
from core.api.views import ScheduleView as ScheduleView
from core.api.views import ServiceState as ServiceState
from core.api.views import ServiceStatus as ServiceStatus
from core.api.views import WorkerView as WorkerView
from core.api.wire import filter_wire as filter_wire
from core.api.wire import job_from_wire as job_from_wire
from core.api.wire import job_wire as job_wire
from core.api.wire import jobs_delta as jobs_delta
from core.api.wire import limits_from_wire as limits_from_wire
from core.api.wire import limits_wire as limits_wire
from core.api.wire import schedule_from_wire as schedule_from_wire
from core.api.wire import schedule_wire as schedule_wire
from core.api.wire import spec_from_wire as spec_from_wire
from core.api.wire import spec_wire as spec_wire
from core.api.wire import spec_with_params as spec_with_params
from core.api.wire import views_delta as views_delta
from core.api.wire import views_from_delta as views_from_delta
from core.events.shapes import JobFilter as JobFilter
from core.events.shapes import JobOptions as JobOptions
from core.events.shapes import JobSpec as JobSpec
from core.events.shapes import ScheduleOptions as ScheduleOptions

if TYPE_CHECKING:
    from core.api.engine_api import EngineAPI as EngineAPI
    from core.api.engine_api import ServiceHost as ServiceHost

__getattr__ = lazy_attributes(__name__, {"core.api.engine_api": ("EngineAPI", "ServiceHost")})
