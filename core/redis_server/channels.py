"""Following a Redis pub/sub channel for as long as a service runs, through reconnects."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.redis_server.backoff import Backoff

log = logging.getLogger(__name__)


async def follow_channel(
    client: Callable[[], aioredis.Redis],
    channel: str,
    handle: Callable[[object], None],
    *,
    read_seconds: float,
    stopping: Callable[[], bool] = lambda: False,
    subscribed: Callable[[], None] = lambda: None,
) -> None:
    """Hand the data of every message on `channel` to `handle`, until cancelled.

    A failed connection is logged and the channel subscribed again after a jittered
    backoff (messages sent meanwhile are lost: pub/sub keeps none), unless `stopping()`
    says the failure is the owner's own shutdown. `subscribed()` is called each time the
    server confirms the subscription: from then on no message on the channel is missed.
    """
    backoff = Backoff()
    while True:
        # Confirmations are read, not skipped: SUBSCRIBE returns once it is sent, and only
        # the confirmation says the server will deliver what is published from now on.
        pubsub = client().pubsub()
        try:
            await pubsub.subscribe(channel)
            backoff.reset()
            while True:
                message = await pubsub.get_message(timeout=read_seconds)
                if message is None:
                    continue
                if message.get("type") == "message":
                    handle(message.get("data"))
                elif message.get("type") == "subscribe":
                    subscribed()
        except (RedisError, OSError) as exc:
            if stopping():
                return
            log.warning("channel %s unreadable (%s); subscribing again", channel, exc)
            await backoff.wait()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
