"""Huey: one consumer process with one worker thread (its defaults), blocking Redis reads."""

from __future__ import annotations

import os
import time
from typing import Any

from common import main, venv_bin
from huey import RedisHuey
from huey.api import Result

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
huey = RedisHuey("bench", url=URL)


@huey.task()
def noop() -> str:
    """The job: return a constant (stored in the huey.results.bench hash)."""
    return "ok"


class HueyPeer:
    def __init__(self, url: str) -> None:
        self.redis = huey.storage.conn

    def enqueue_many(self, n: int) -> list[Any]:
        return [noop().id for _ in range(n)]

    def done_many(self, handles: list[Any]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in handles:
            pipe.hexists(huey.storage.result_key, task_id)
        return [bool(v) for v in pipe.execute()]

    def enqueue_one(self) -> Any:
        return noop()

    def wait_one(self, handle: Any) -> None:
        result: Result = handle
        # Huey's client polls (from 100 ms up); poll every 2 ms like the others here.
        deadline = time.monotonic() + 30
        while (value := result.get()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"huey task {result.id}: no result")
            time.sleep(0.002)
        if value != "ok":
            raise RuntimeError(f"huey task {result.id}: {value!r}")

    def worker_argv(self) -> list[str]:
        return [venv_bin("huey_consumer"), "huey_peer.huey", "-w", "1", "-k", "thread", "-q"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered as huey_peer.noop (the
    # worker imports that name), not __main__.noop.
    from huey_peer import HueyPeer as Peer

    main(Peer)
