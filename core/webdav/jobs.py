"""What the inbox needs of the job manager, as a protocol the job manager will satisfy."""

from __future__ import annotations

from typing import Any, Protocol


class JobOutcome(Protocol):
    """What the inbox reads of a job: its status and how it ended."""

    @property
    def status(self) -> Any: ...
    @property
    def result(self) -> Any: ...
    @property
    def error(self) -> Any: ...


class JobHandle(Protocol):
    """What the inbox keeps of a created job: its id."""

    @property
    def job_id(self) -> int: ...


class JobSubmitter(Protocol):
    """The part of the job manager the inbox needs."""

    async def create_job(
        self, topic: str, params: str, *, circle: str = ..., params_type: str = ...
    ) -> JobHandle:
        """Create a job; raise ValueError (with the parser's message) for bad HeroScript."""
        ...

    async def get_job(self, job_id: int) -> JobOutcome:
        """The job with this id."""
        ...
