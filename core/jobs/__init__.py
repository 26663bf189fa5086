"""Jobs: the model, the Redis queue, the OurDB-backed manager, and the service that runs them."""

from core.jobs.manager import (
    JobEndedError,
    JobError,
    JobManager,
    JobNotEndedError,
    JobNotFoundError,
    NewJob,
    QueueStats,
)
from core.jobs.model import Job, JobStatus, ParamsType

__all__ = [
    "Job",
    "JobEndedError",
    "JobError",
    "JobManager",
    "JobNotEndedError",
    "JobNotFoundError",
    "JobStatus",
    "NewJob",
    "ParamsType",
    "QueueStats",
]
