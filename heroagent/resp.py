"""The client library's asyncio Redis connection, for AsyncClient.

Not redis-py: importing redis-py 8 costs more than the whole start of `heroagent submit`
may take (it loads its asyncio and blocking clients, cluster support, OpenTelemetry
metrics and importlib.metadata: about 100 ms where `python -c pass` takes 12 ms; see
docs/client.md). What it says and how it reads the replies is heroagent.wire, shared
with the blocking connection (heroagent.resp_sync); this module only does the asyncio
I/O. It reaches the server every way the config can name it: the managed server's unix
socket (its password read from the data dir), a redis://, rediss:// or unix:// URL
(user, password, db, TLS), or the primary the Sentinels name, asked anew for each
connection so that a reconnect after a failover finds the promoted replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from core.channel import Plan, Stepper, T
from core.config import Config
from heroagent.wire import (
    CONNECT_TIMEOUT_SECONDS,
    READ_CHUNK,
    REPLY_TIMEOUT_SECONDS,
    Idle,
    Probe,
    RedisReplyError,
    Replies,
    RespConnectionError,
    Subscribed,
    Target,
    checked,
    confirm_subscribe,
    connect_failed,
    find_target,
    login,
    message_data,
    pack,
    parse_url,
    tls_context,
)
from heroagent.wire import sentinel_primary as _sentinel_plan

__all__ = [
    "Connection",
    "RedisReplyError",
    "RespClient",
    "RespConnectionError",
    "Subscription",
    "Target",
    "connect",
    "pack",
    "parse_url",
    "run",
    "sentinel_primary",
    "target_finder",
]


async def run(plan: Plan[T], perform: Callable[[Any], Awaitable[Any]]) -> T:
    """Run a plan: each step it yields is awaited with `perform`, its outcome sent back."""
    steps = Stepper(plan)
    while not steps.done:
        try:
            value = await perform(steps.step)
        except Exception as exc:  # the plan's to handle; it re-raises what it does not
            steps.fail(exc)
        else:
            steps.give(value)
    return steps.result


class Connection:
    """One open connection: commands are sent and their replies read back in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str):
        self._reader = reader
        self._writer = writer
        self._replies = Replies(where)
        self.where = where
        self.broken = False

    @property
    def max_reply(self) -> int:
        """The largest reply read before the connection is dropped."""
        return self._replies.max_reply

    @max_reply.setter
    def max_reply(self, size: int) -> None:
        self._replies.max_reply = size

    async def execute(
        self,
        *args: str | bytes | int | float,
        timeout: float | None = REPLY_TIMEOUT_SECONDS,  # noqa: ASYNC109
    ) -> Any:
        """Send one command and return its reply; an error reply is raised."""
        self.send(*args)
        return await self.reply(timeout)

    def send(self, *args: str | bytes | int | float) -> None:
        """Write one command (its reply is read with `reply`)."""
        self._writer.write(pack(args))

    async def reply(self, timeout: float | None = REPLY_TIMEOUT_SECONDS) -> Any:  # noqa: ASYNC109
        """The next reply; a connection left mid-reply (cancelled, broken) is closed."""
        try:
            async with asyncio.timeout(timeout):
                reply = await self._next()
        except TimeoutError:
            self.close()
            raise self._replies.silent(timeout) from None
        except BaseException:
            self.close()
            raise
        return checked(reply)

    async def _next(self) -> Any:
        while (reply := self._replies.next()) is False:
            self._replies.feed(await self._reader.read(READ_CHUNK))
        return reply

    @property
    def stale(self) -> bool:
        """True when it cannot take a command: broken, or closed by the server while idle."""
        return self.broken or self._reader.at_eof() or self._writer.is_closing()

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.broken = True
        self._writer.close()


async def connect(target: Target, timeout: float = CONNECT_TIMEOUT_SECONDS) -> Connection:  # noqa: ASYNC109
    """A connection to `target`, logged in (AUTH) and on its db (SELECT), within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            if target.path:
                reader, writer = await asyncio.open_unix_connection(target.path)
            elif target.tls is not None:
                reader, writer = await asyncio.open_connection(
                    target.host, target.port, ssl=tls_context(target.tls),
                    server_hostname=target.host,
                )  # fmt: skip
            else:
                reader, writer = await asyncio.open_connection(target.host, target.port)
    except (TimeoutError, OSError) as exc:
        raise connect_failed(target, exc, timeout) from None
    connection = Connection(reader, writer, target.where)
    try:
        await run(login(target), lambda step: connection.execute(*step.args, timeout=timeout))
    except BaseException:
        connection.close()
        raise
    return connection


async def _probe(step: Probe) -> Any:
    connection = await connect(step.target, step.timeout)
    try:
        return await connection.execute(*step.args, timeout=step.timeout)
    finally:
        connection.close()


async def sentinel_primary(config: Config) -> tuple[str, int]:
    """Where the configured Sentinels say the primary is now (heroagent.wire's plan)."""
    return await run(_sentinel_plan(config), _probe)


def target_finder(config: Config, password: str | None = None) -> Callable[[], Awaitable[Target]]:
    """How to find the server for each new connection (heroagent.wire.find_target)."""
    find = find_target(config, password)

    async def target() -> Target:
        return await run(find(), _probe)

    return target


class RespClient:
    """Connections to one server, made on demand and reused: concurrent calls each get one.

    The commands are those the request channel and the events channel need. Not bound to
    a loop until the first command; use it from one event loop.
    """

    def __init__(self, find: Callable[[], Awaitable[Target]]) -> None:
        self._find = find
        self._idle: Idle[Connection] = Idle()

    async def execute(
        self,
        *args: str | bytes | int | float,
        timeout: float | None = REPLY_TIMEOUT_SECONDS,  # noqa: ASYNC109
    ) -> Any:
        """Run one command on a free connection; its reply (an error reply is raised)."""
        idle = self._idle  # given back there: closed, if the client closed meanwhile
        connection = idle.take() or await connect(await self._find())
        try:
            return await connection.execute(*args, timeout=timeout)
        finally:
            idle.give(connection)

    async def rpush(self, key: str, *values: str | bytes) -> int:
        """RPUSH: append to a list; its new length."""
        return int(await self.execute("RPUSH", key, *values))

    async def lrem(self, key: str, count: int, value: str | bytes) -> int:
        """LREM: remove up to `count` items equal to `value`; how many went."""
        return int(await self.execute("LREM", key, count, value))

    async def blpop(self, keys: Sequence[str], timeout: float = 0) -> list[bytes] | None:  # noqa: ASYNC109
        """BLPOP: [key, item] of the first list to have one within `timeout` s, or None."""
        wait = None if timeout == 0 else timeout + REPLY_TIMEOUT_SECONDS
        found = await self.execute("BLPOP", *keys, timeout, timeout=wait)
        return list(found) if found is not None else None

    async def open_subscription(
        self, channel: str, confirm_seconds: float = CONNECT_TIMEOUT_SECONDS
    ) -> Subscription:
        """A connection of its own subscribed to `channel`, once the server confirmed it.

        The caller closes it (`Subscription.close`).
        """
        connection = await connect(await self._find())
        try:
            connection.send("SUBSCRIBE", channel)
            confirm_subscribe(await connection.reply(confirm_seconds), connection.where)
        except BaseException:
            connection.close()
            raise
        return Subscription(connection)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, confirm_seconds: float = CONNECT_TIMEOUT_SECONDS
    ) -> AsyncIterator[Subscription]:
        """`open_subscription`, closed at the end of the block."""
        subscription = await self.open_subscription(channel, confirm_seconds)
        try:
            yield subscription
        finally:
            subscription.close()

    async def aclose(self) -> None:
        """Close every connection (one in use once its command is answered).

        The client may be used again: it makes new connections.
        """
        idle, self._idle = self._idle, Idle()
        idle.close()


class Subscription(Subscribed[Connection]):
    """The messages of a subscribed channel, one by one."""

    async def message(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """The next message's data (None for `timeout` waits as long as it takes)."""
        while (data := message_data(await self._connection.reply(timeout))) is None:
            pass
        return data
