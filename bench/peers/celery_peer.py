"""Celery: one worker process with the solo pool, Redis as broker and result backend."""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery
from celery.result import AsyncResult
from common import main, venv_bin

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
app = Celery("celery_peer", broker=URL, backend=URL)
app.conf.broker_connection_retry_on_startup = True


@app.task
def noop() -> str:
    """The job: return a constant (stored in celery-task-meta-<id>)."""
    return "ok"


class CeleryPeer:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)

    def enqueue_many(self, n: int) -> list[Any]:
        with app.producer_or_acquire() as producer:
            return [noop.apply_async(producer=producer).id for _ in range(n)]

    def done_many(self, handles: list[Any]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in handles:
            pipe.exists(f"celery-task-meta-{task_id}")
        return [bool(v) for v in pipe.execute()]

    def enqueue_one(self) -> Any:
        return noop.delay()

    def wait_one(self, handle: Any) -> None:
        result: AsyncResult = handle
        # The Redis backend waits on pub/sub, not by polling.
        if result.get(timeout=30) != "ok":
            raise RuntimeError(f"celery task {result.id}: no result")

    def worker_argv(self) -> list[str]:
        return [venv_bin("celery"), "-A", "celery_peer", "worker", "-P", "solo", "-l", "WARNING"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered as celery_peer.noop (the
    # worker imports that name), not __main__.noop.
    from celery_peer import CeleryPeer as Peer

    main(Peer)
