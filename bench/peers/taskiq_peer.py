"""taskiq: taskiq-redis's stream broker and Redis result backend; one `taskiq worker` process.

Its documented setup: `RedisStreamBroker` (acknowledged delivery through a consumer
group) with `RedisAsyncResultBackend`; the worker keeps its default of 100 async tasks
at once, `--workers 1` so one bench worker is one process. The client waits with
`wait_result(check_interval=0.001)`, taskiq's own polling wait at its tightest.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import redis
from common import AsyncPeer, main, venv_bin
from taskiq import AsyncTaskiqTask
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CONCURRENT = 100
broker = RedisStreamBroker(url=URL).with_result_backend(RedisAsyncResultBackend(redis_url=URL))


@broker.task
async def noop() -> str:
    """The job: return a constant (the result backend stores it under the task id)."""
    return "ok"


class TaskiqPeer(AsyncPeer):
    async def connect(self, url: str) -> None:
        # Start-up creates the consumer group at the stream's end: before any job is
        # queued, so the worker sees the jobs queued ahead of it.
        await broker.startup()
        self.redis = redis.Redis.from_url(url)

    def enqueue_many(self, n: int) -> list[Any]:
        async def run() -> list[str]:
            ids: list[str] = []
            for start in range(0, n, CONCURRENT):
                count = min(CONCURRENT, n - start)
                tasks = await asyncio.gather(*(noop.kiq() for _ in range(count)))
                ids += [task.task_id for task in tasks]
            return ids

        return self.run(run())

    def done_many(self, handles: list[Any]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in handles:
            pipe.exists(task_id)
        return [bool(v) for v in pipe.execute()]

    def enqueue_one(self) -> Any:
        return self.run(noop.kiq())

    def wait_one(self, handle: Any) -> None:
        task: AsyncTaskiqTask[str] = handle
        result = self.run(task.wait_result(check_interval=0.001, timeout=30))
        if result.is_err or result.return_value != "ok":
            raise RuntimeError(f"taskiq task {task.task_id}: {result!r}")

    def worker_argv(self) -> list[str]:
        return [venv_bin("taskiq"), "worker", "taskiq_peer:broker", "--workers", "1"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered as taskiq_peer:noop (the
    # worker imports that name), not __main__:noop.
    from taskiq_peer import TaskiqPeer as Peer

    main(Peer)
