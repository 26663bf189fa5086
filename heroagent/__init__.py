r"""HeroAgent's client library: submit jobs to a running engine, wait for them, read them.

    from heroagent import Client

    with Client() as client:
        job = client.submit("!!core.echo message:hello\n", topic="demo")
        print(client.result(job.job_id, timeout=30))

See docs/client.md. Importing this package loads no engine part, no web server and no
terminal UI: only the config, the Redis client and the engine API's views and errors.
`AsyncClient` loads (with asyncio) when first named: a `Client` never needs asyncio.
"""

from typing import TYPE_CHECKING, Any

from core import __version__
from core.api import (
    EngineError,
    EngineUnavailable,
    JobEnded,
    JobFilter,
    JobNotEnded,
    JobNotFound,
    JobRefused,
    JobSpec,
    JobView,
    LimitsView,
    Problem,
    ScheduleNotFound,
    ScheduleView,
)
from core.config import ConfigError
from heroagent.errors import ClientError, EngineUnreachable, JobFailed, WaitTimeout
from heroagent.sync import Client

if TYPE_CHECKING:
    from heroagent.aio import AsyncClient

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "ConfigError",
    "EngineError",
    "EngineUnavailable",
    "EngineUnreachable",
    "JobEnded",
    "JobFailed",
    "JobFilter",
    "JobNotEnded",
    "JobNotFound",
    "JobRefused",
    "JobSpec",
    "JobView",
    "LimitsView",
    "Problem",
    "ScheduleNotFound",
    "ScheduleView",
    "WaitTimeout",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # `from heroagent import AsyncClient` loads asyncio; `import heroagent` does not.
    if name == "AsyncClient":
        from heroagent.aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
