"""What the inbox needs of the engine API, as a protocol `core.api.EngineAPI` satisfies."""

from __future__ import annotations

from typing import Protocol

from core.api import JobView


class JobSubmitter(Protocol):
    """The part of the engine API the inbox uses."""

    @property
    def max_params_bytes(self) -> int:
        """The largest params text a job may have."""
        ...

    async def submit(
        self, params: str, *, topic: str, circle: str = ..., params_type: str = ...
    ) -> JobView:
        """Create a job; raise ValueError (with the parser's message) for bad HeroScript."""
        ...

    async def job(self, job_id: int) -> JobView:
        """The job with this id."""
        ...
