"""Jobs: the model, the Redis queue, the OurDB-backed manager, and the service that runs them."""

from core.jobs.manager import (
    JobError,
    JobManager,
    JobNotFoundError,
    QueueStats,
)
from core.jobs.model import Job, JobStatus, ParamsType

__all__ = [
    "Job",
    "JobError",
    "JobManager",
    "JobNotFoundError",
    "JobStatus",
    "ParamsType",
    "QueueStats",
]
