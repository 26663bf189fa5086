"""SAQ: one worker process (asyncio, concurrency 10, its default)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from common import AsyncPeer, main, venv_bin
from saq import Job, Queue

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CONCURRENT = 100
queue = Queue.from_url(URL)


async def noop(ctx: dict[str, Any]) -> str:
    """The job: return a constant (stored in the job's record)."""
    return "ok"


settings = {"queue": queue, "functions": [noop]}


class SaqPeer(AsyncPeer):
    async def connect(self, url: str) -> None:
        await queue.connect()
        self.redis = queue.redis  # type: ignore[attr-defined]

    def enqueue_many(self, n: int) -> list[Any]:
        async def run() -> list[str]:
            ids: list[str] = []
            for start in range(0, n, CONCURRENT):
                count = min(CONCURRENT, n - start)
                jobs = await asyncio.gather(*(queue.enqueue("noop") for _ in range(count)))
                ids += [job.id for job in jobs if job is not None]
            return ids

        return self.run(run())

    def done_many(self, handles: list[Any]) -> list[bool]:
        async def check() -> list[bool]:
            pipe = self.redis.pipeline(transaction=False)
            for job_id in handles:
                pipe.zscore(queue.namespace("incomplete"), job_id)  # type: ignore[attr-defined]
            # Gone from the incomplete set means finished (its result is in the job key).
            return [score is None for score in await pipe.execute()]

        return self.run(check())

    def enqueue_one(self) -> Any:
        return self.run(queue.enqueue("noop"))

    def wait_one(self, handle: Any) -> None:
        job: Job = handle

        # SAQ waits for the update on pub/sub, but subscribes only after it has read the
        # job, so an update in between is missed and it waits out the whole timeout. A
        # short timeout in a loop keeps that race from costing more than 20 ms.
        async def wait() -> None:
            deadline = asyncio.get_running_loop().time() + 30
            while not job.completed:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"saq job {job.id}: no result")
                try:
                    await job.refresh(until_complete=0.02)
                except TimeoutError:
                    await job.refresh()

        self.run(wait())
        if job.result != "ok":
            raise RuntimeError(f"saq job {job.id}: {job.status} {job.result!r}")

    def worker_argv(self) -> list[str]:
        return [venv_bin("saq"), "saq_peer.settings"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered as saq_peer.noop (the
    # worker imports that name), not __main__.noop.
    from saq_peer import SaqPeer as Peer

    main(Peer)
