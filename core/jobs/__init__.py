"""Jobs: the model, the Redis queue, the OurDB-backed manager, and the service that runs them."""

from typing import TYPE_CHECKING, Any

from core.jobs.model import Job, JobStatus, ParamsType

if TYPE_CHECKING:
    from core.jobs.manager import JobError, JobManager, JobNotFoundError, QueueStats

__all__ = [
    "Job",
    "JobError",
    "JobManager",
    "JobNotFoundError",
    "JobStatus",
    "ParamsType",
    "QueueStats",
]
_FROM_MANAGER = {"JobError", "JobManager", "JobNotFoundError", "QueueStats"}


def __getattr__(name: str) -> Any:
    # The manager (OurDB, the SQLite index) loads when first asked for: `heroagent worker`
    # imports core.jobs for the queue and the model, owns no history, and starts faster.
    if name in _FROM_MANAGER:
        from core.jobs import manager

        return getattr(manager, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
