"""The engine's Redis connections send without a task per command and keep the send bound."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine, Generator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis_server.inplace import InPlaceConnection, InPlaceUnixConnection, sending_in_place
from core.redis_server.service import RESP_PROTOCOL
from tests.helpers import ValkeyProcess

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="asyncio.wait_for makes no task from Python 3.12"
)


async def tasks_made_by(n: int, command: Any) -> int:
    """How many tasks `n` awaits of `command()` create, counted by the loop's task factory."""
    loop = asyncio.get_running_loop()
    made = 0

    def factory(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        nonlocal made
        made += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        for _ in range(n):
            await command()
    finally:
        loop.set_task_factory(None)
    return made


async def test_commands_make_no_task_of_their_own(valkey: ValkeyProcess) -> None:
    plain = aioredis.Redis.from_url(valkey.url)
    fast = sending_in_place(aioredis.Redis.from_url(valkey.url))
    unix = sending_in_place(aioredis.Redis(unix_socket_path=str(valkey.socket_path)))
    try:
        for client in (plain, fast, unix):
            await client.ping()  # connected before counting
        # redis-py's own: one task per send (asyncio.wait_for), the cost this removes.
        assert await tasks_made_by(20, plain.ping) == 20
        assert await tasks_made_by(20, fast.ping) == 0
        assert await tasks_made_by(20, lambda: unix.set("k", "v")) == 0
        assert await fast.get("k") == b"v"
        assert fast.connection_pool.connection_class is InPlaceConnection
        assert unix.connection_pool.connection_class is InPlaceUnixConnection
        # The bound is put back after each send.
        (used,) = fast.connection_pool._available_connections
        (theirs,) = plain.connection_pool._available_connections
        assert type(used) is InPlaceConnection
        assert used.socket_timeout == theirs.socket_timeout
    finally:
        for client in (plain, fast, unix):
            await client.aclose()


async def test_a_send_the_peer_never_reads_times_out_and_drops_the_connection() -> None:
    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers the connect handshake (each of its commands with OK), then, once the
        # SET begins, reads nothing more.
        while b"\r\nSET\r\n" not in (data := await reader.read(65_536)) and data:
            writer.write(b"+OK\r\n" * (data.count(b"\r\n*") + data.startswith(b"*")))
            await writer.drain()
        await asyncio.Event().wait()

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # No retry: the first timeout is the answer.
    client = sending_in_place(
        aioredis.Redis(
            host="127.0.0.1",
            port=port,
            socket_timeout=0.3,
            retry=Retry(NoBackoff(), 0),
            protocol=RESP_PROTOCOL,
        )
    )
    try:
        with pytest.raises(RedisTimeoutError, match="writing"):
            # Far more than the socket buffers hold: the send waits on the peer.
            await client.set("k", b"x" * (64 << 20))
        (used,) = client.connection_pool._available_connections
        assert used.socket_timeout == 0.3
        assert not used.is_connected  # dropped: half a command went out
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
