"""RQ: jobs through a SimpleWorker (runs jobs in its own process, no fork per job)."""

from __future__ import annotations

import os
from typing import Any

import redis
from common import main, venv_bin
from rq import Queue
from rq.job import Job

URL = os.environ.get("BENCH_REDIS_URL", "")
BATCH = 1_000


def noop() -> str:
    """The job: return a constant (RQ stores it in rq:results:<id>)."""
    return "ok"


class RQPeer:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.queue = Queue(connection=self.redis)

    def enqueue_many(self, n: int) -> list[Any]:
        ids: list[str] = []
        for start in range(0, n, BATCH):
            datas = [Queue.prepare_data("rq_peer.noop") for _ in range(min(BATCH, n - start))]
            with self.redis.pipeline() as pipe:
                jobs = self.queue.enqueue_many(datas, pipeline=pipe)
                pipe.execute()
            ids += [job.id for job in jobs]
        return ids

    # RQ's batch API (Queue.enqueue_many in one pipeline) is what enqueue_many uses.
    def enqueue_bulk(self, n: int) -> list[Any]:
        return self.enqueue_many(n)

    def done_many(self, handles: list[Any]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in handles:
            pipe.exists(f"rq:results:{job_id}")
        return [bool(v) for v in pipe.execute()]

    def enqueue_one(self) -> Any:
        return self.queue.enqueue("rq_peer.noop")

    def wait_one(self, handle: Any) -> None:
        job: Job = handle
        result = job.latest_result(timeout=30)  # XREAD BLOCK on the result stream
        if result is None or result.return_value != "ok":
            raise RuntimeError(f"rq job {job.id}: no result")

    def worker_argv(self) -> list[str]:
        return [venv_bin("rq"), "worker", "--worker-class", "rq.SimpleWorker", "--url", URL, "-q"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered as rq_peer.noop (the
    # worker imports that name), not __main__.noop.
    from rq_peer import RQPeer as Peer

    main(Peer)
