"""Redis connections that send in place: no task per command on Python 3.11.

redis-py bounds each send by `socket_timeout` with `asyncio.wait_for`, which before
Python 3.12 runs the send as a task of its own: one task and one more loop turn for
every command the engine sends (about a tenth of a millisecond of each single submit's
`ENQUEUE` on a loaded two-core machine, `python -m bench.trace_submit`). These
connections keep the same bound with `asyncio.timeout` around the send, the same error
(`redis.exceptions.TimeoutError`, the connection dropped) and everything else redis-py's.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.exceptions import TimeoutError as RedisTimeoutError


class _SendsInPlace(AbstractConnection):
    """Mixin: the send under `asyncio.timeout` instead of redis-py's `asyncio.wait_for`."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        limit = self.socket_timeout
        if not limit:
            await super().send_packed_command(command, check_health)
            return
        # Without a limit of its own the parent writes in place; the one here bounds it,
        # and the health check's read with it. A connection runs one command at a time.
        self.socket_timeout = None
        try:
            async with asyncio.timeout(limit):
                await super().send_packed_command(command, check_health)
        except TimeoutError:
            # The parent dropped the connection as the cancel went through it.
            raise RedisTimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = limit


class InPlaceConnection(_SendsInPlace, Connection):
    """A TCP connection that sends in place."""


class InPlaceUnixConnection(_SendsInPlace, UnixDomainSocketConnection):
    """A unix-socket connection that sends in place."""


class InPlaceSSLConnection(_SendsInPlace, SSLConnection):
    """A TLS connection that sends in place."""


class InPlaceSentinelConnection(_SendsInPlace, SentinelManagedConnection):
    """A connection to the server a Sentinel names, sending in place."""


_IN_PLACE: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: InPlaceConnection,
    UnixDomainSocketConnection: InPlaceUnixConnection,
    SSLConnection: InPlaceSSLConnection,
    SentinelManagedConnection: InPlaceSentinelConnection,
}


def sending_in_place(client: aioredis.Redis) -> aioredis.Redis:
    """`client`, its pool making connections that send in place (before Python 3.12).

    Call before its first command: connections made already stay as they are. A
    connection class this module does not know (a caller's own) is left alone.
    """
    if sys.version_info >= (3, 12):
        return client  # wait_for no longer runs what it waits for as a task
    pool = client.connection_pool
    pool.connection_class = _IN_PLACE.get(pool.connection_class, pool.connection_class)
    return client
