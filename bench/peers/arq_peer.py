"""arq: one worker process (asyncio, max_jobs=10 by default)."""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from common import AsyncPeer, main, venv_bin

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CONCURRENT = 100


async def noop(ctx: dict[str, Any]) -> str:
    """The job: return a constant (arq stores it in arq:result:<id>)."""
    return "ok"


class WorkerSettings:
    """What `arq arq_peer.WorkerSettings` runs: arq's defaults otherwise."""

    functions: ClassVar[list[Any]] = [noop]
    redis_settings = RedisSettings.from_dsn(URL)


class ArqPeer(AsyncPeer):
    async def connect(self, url: str) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(url))

    def enqueue_many(self, n: int) -> list[Any]:
        async def run() -> list[str]:
            ids: list[str] = []
            for start in range(0, n, CONCURRENT):
                count = min(CONCURRENT, n - start)
                jobs = await asyncio.gather(*(self.pool.enqueue_job("noop") for _ in range(count)))
                ids += [job.job_id for job in jobs if job is not None]
            return ids

        return self.run(run())

    def done_many(self, handles: list[Any]) -> list[bool]:
        async def run() -> list[bool]:
            pipe = self.pool.pipeline(transaction=False)
            for job_id in handles:
                pipe.exists(f"arq:result:{job_id}")
            return [bool(v) for v in await pipe.execute()]

        return self.run(run())

    def enqueue_one(self) -> Any:
        return self.run(self.pool.enqueue_job("noop"))

    def wait_one(self, handle: Any) -> None:
        job: Job = handle
        # arq's client polls for the result; 2 ms like the other polling clients here.
        value = self.run(job.result(timeout=30, poll_delay=0.002))
        if value != "ok":
            raise RuntimeError(f"arq job {job.job_id}: {value!r}")

    def worker_argv(self) -> list[str]:
        return [venv_bin("arq"), "arq_peer.WorkerSettings"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered as arq_peer.noop (the
    # worker imports that name), not __main__.noop.
    from arq_peer import ArqPeer as Peer

    main(Peer)
