"""Dramatiq: one worker process with 8 threads (its default thread count), Redis results."""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from common import main, venv_bin
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
broker = RedisBroker(url=URL)
backend = RedisBackend(url=URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True)
def noop() -> str:
    """The job: return a constant (stored by the Results middleware)."""
    return "ok"


class DramatiqPeer:
    def __init__(self, url: str) -> None:
        self.redis = broker.client

    def enqueue_many(self, n: int) -> list[Any]:
        return [noop.send() for _ in range(n)]

    def done_many(self, handles: list[Any]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for message in handles:
            pipe.exists(backend.build_message_key(message))
        return [bool(v) for v in pipe.execute()]

    def enqueue_one(self) -> Any:
        return noop.send()

    def wait_one(self, handle: Any) -> None:
        message: Message[Any] = handle
        # The Redis backend blocks on the result key (BRPOPLPUSH), no polling.
        if message.get_result(backend=backend, block=True, timeout=30_000) != "ok":
            raise RuntimeError(f"dramatiq message {message.message_id}: no result")

    def worker_argv(self) -> list[str]:
        return [venv_bin("dramatiq"), "dramatiq_peer", "--processes", "1", "--threads", "8"]


if __name__ == "__main__":
    # Import the module by its name, so tasks are registered as dramatiq_peer.noop (the
    # worker imports that name), not __main__.noop.
    from dramatiq_peer import DramatiqPeer as Peer

    main(Peer)
