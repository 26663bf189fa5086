"""streaq: one `streaq run` worker process (its default concurrency, 16), Redis streams.

Its documented setup: a `Worker` on the server's URL, tasks registered with
`@worker.task`, `worker.enqueue_many` (one pipeline) as its batch API. The client does
not use `task.result()` to wait: that call always spends about 100 ms in its pub/sub
client's unsubscribe, so the bench polls the result key every 2 ms instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

from common import AsyncPeer, main, venv_bin
from streaq import Worker

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
BATCH = 1_000
worker = Worker(redis_url=URL)


@worker.task
async def noop() -> str:
    """The job: return a constant (stored under streaq:default:task:results:<id>)."""
    return "ok"


class StreaqPeer(AsyncPeer):
    async def connect(self, url: str) -> None:
        # The worker object is also the client; entering it connects.
        await worker.__aenter__()

    def enqueue_many(self, n: int) -> list[Any]:
        return self.enqueue_bulk(n)

    def enqueue_bulk(self, n: int) -> list[Any]:
        ids: list[str] = []
        for start in range(0, n, BATCH):
            tasks = [noop.enqueue() for _ in range(min(BATCH, n - start))]
            self.run(worker.enqueue_many(tasks))
            ids += [task.id for task in tasks]
        return ids

    def done_many(self, handles: list[Any]) -> list[bool]:
        async def check() -> list[bool]:
            async with worker.redis.pipeline(transaction=False) as pipe:
                replies = [pipe.exists([worker.results_key + task_id]) for task_id in handles]
            return [bool(await r) for r in replies]

        return list(self.run(check()))

    def enqueue_one(self) -> Any:
        async def one() -> str:
            task = await noop.enqueue()
            return task.id

        return self.run(one())

    def wait_one(self, handle: Any) -> None:
        deadline = time.monotonic() + 30
        while not self.done_many([handle])[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"streaq task {handle}: no result")
            time.sleep(0.002)

    def worker_argv(self) -> list[str]:
        return [venv_bin("streaq"), "run", "streaq_peer:worker"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered under streaq_peer (the
    # worker imports that name), not __main__.
    from streaq_peer import StreaqPeer as Peer

    main(Peer)
