"""An in-process stand-in for the engine API: records submissions and "runs" each job.

Not a mock of Redis or the file system: a small real collaborator with what the inbox
uses of `EngineAPI`, publishing JobStateChanged on the real bus as the engine does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from core.api import JobView
from core.events import JobStateChanged
from core.events.bus import EventBus


class HeroScriptError(ValueError):
    """What the real parser raises for a text it cannot read."""


@dataclass
class FakeJob:
    job_id: int
    circle: str
    topic: str
    params: str
    params_type: str
    status: str = "new"
    result: str = ""
    error: str = ""

    def view(self) -> JobView:
        fields = ("job_id", "circle", "topic", "params", "params_type", "status", "result")
        return JobView(error=self.error, **{name: getattr(self, name) for name in fields})


@dataclass
class FakeJobs:
    """Jobs whose params start with `!!` are valid; `!!fake.return_error` ends in error."""

    bus: EventBus
    run_after: float = 0.05
    next_id: int = 1
    jobs: dict[int, FakeJob] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    max_params_bytes: int = 48 * 1024

    async def submit(
        self,
        params: str,
        *,
        topic: str,
        circle: str = "default",
        params_type: str = "heroscript",
    ) -> JobView:
        if not params.lstrip().startswith("!!"):
            raise HeroScriptError("line 1, column 1: expected an action like !!actor.action")
        job_id = self.next_id
        self.next_id += 1
        self.calls.append((circle, topic, params))
        self.jobs[job_id] = FakeJob(job_id, circle, topic, params, params_type)
        asyncio.get_running_loop().call_later(self.run_after, self.finish, job_id)
        return self.jobs[job_id].view()

    def finish(self, job_id: int) -> None:
        job = self.jobs[job_id]
        if "return_error" in job.params:
            job.status, job.error = "error", "fake.return_error: asked to fail"
        else:
            job.status, job.result = "done", f"ran {len(job.params)} bytes"
        self.bus.publish(
            JobStateChanged(
                job_id=job_id,
                circle=job.circle,
                topic=job.topic,
                status=job.status,
                error=job.error,
            )
        )

    async def job(self, job_id: int) -> JobView:
        return self.jobs[job_id].view()
