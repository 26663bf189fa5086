"""The client library's own small asyncio Redis client, on hiredis' RESP parser.

Not redis-py: importing redis-py 8 costs more than the whole start of `heroagent submit`
may take (it loads its asyncio and blocking clients, cluster support, OpenTelemetry
metrics and importlib.metadata: about 100 ms where `python -c pass` takes 12 ms; see
docs/client.md). The client sends few commands (RPUSH, BLPOP, LREM, SUBSCRIBE), so it
speaks them itself: this module writes the socket and packs commands, `hiredis.Reader`
parses the replies. It reaches the server every way the config can name it: the managed
server's unix socket (its password read from the data dir), a redis://, rediss:// or
unix:// URL (user, password, db, TLS), or the primary the Sentinels name, asked anew
for each connection so that a reconnect after a failover finds the promoted replica.

Errors: a connection that cannot be made, is refused a login or breaks is a
`RespConnectionError` (a ConnectionError, so an OSError); an error reply is a
`RedisReplyError`. The client library turns both into EngineUnreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import hiredis

from core.config import Config
from core.redis_server.address import (
    SENTINEL_TIMEOUT,
    existing_password,
    sentinel_addresses,
    socket_path,
)

if TYPE_CHECKING:
    import ssl

CONNECT_TIMEOUT_SECONDS = 5.0
# A reply larger than this is not one the engine sends (its biggest, a page of 1,000
# jobs, is a few MiB): the connection is dropped rather than buffered without end.
MAX_REPLY_BYTES = 64 * 1024 * 1024
# A command's reply (after a BLPOP's own timeout) may take this long before the server
# counts as gone: the engine's Redis answers in microseconds, a cut network never does.
REPLY_TIMEOUT_SECONDS = 30.0
READ_CHUNK = 64 * 1024
_TLS_OPTIONS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
)


class RedisReplyError(Exception):
    """The server answered a command with an error (`-ERR …`, `-WRONGTYPE …`)."""


class RespConnectionError(ConnectionError):
    """The server could not be reached or logged in to, or the connection broke."""


@dataclass(frozen=True)
class Target:
    """One server to connect to: a unix socket `path`, or `host` and `port` (TLS or not)."""

    host: str = ""
    port: int = 6379
    path: str = ""
    username: str | None = None
    password: str | None = None
    db: int = 0
    tls: dict[str, str] | None = None
    # CLIENT SETNAME after login: the server lists the connection under it (CLIENT LIST).
    client_name: str = ""

    @property
    def where(self) -> str:
        """The address, as shown in errors (never the password)."""
        return self.path or f"{self.host}:{self.port}"


def pack(args: Sequence[str | bytes | int | float]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse_url(url: str) -> Target:
    """The server a redis://, rediss:// or unix:// URL names (as redis-py reads them).

    `redis://[[user]:password@]host[:port][/db]`, `rediss://` the same over TLS, and
    `unix://[[user]:password@]/path/to.sock[?db=N]`. TLS takes redis-py's query options
    `ssl_cert_reqs` (required, optional, none), `ssl_ca_certs`, `ssl_certfile`,
    `ssl_keyfile` and `ssl_check_hostname`; any scheme takes `client_name`.
    """
    from urllib.parse import parse_qs, unquote, urlsplit  # only for a server named by URL

    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    db_text = query.pop("db", "")
    client_name = query.pop("client_name", "")
    if parts.scheme == "unix":
        target = Target(path=unquote(parts.path), username=username, password=password)
    elif parts.scheme in ("redis", "rediss"):
        path_db = parts.path.strip("/")
        db_text = db_text or path_db
        tls = {name: query.pop(name) for name in _TLS_OPTIONS if name in query}
        try:
            port = parts.port or 6379
        except ValueError:
            raise RespConnectionError(f"redis.url: {parts.netloc!r} has no valid port") from None
        target = Target(
            host=parts.hostname or "localhost",
            port=port,
            username=username,
            password=password,
            tls=tls if parts.scheme == "rediss" else None,
        )
    else:
        raise RespConnectionError(f"redis.url: {parts.scheme!r} is not redis, rediss or unix")
    if query:
        raise RespConnectionError(f"redis.url: unknown option {sorted(query)[0]!r}")
    if db_text and not db_text.isdigit():
        raise RespConnectionError(f"redis.url: db {db_text!r} is not a number")
    if any(c.isspace() for c in client_name):
        raise RespConnectionError(f"redis.url: client_name {client_name!r} has a space")
    return dataclasses.replace(target, db=int(db_text or 0), client_name=client_name)


def _tls_context(options: dict[str, str]) -> ssl.SSLContext:
    import ssl

    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if "ssl_certfile" in options:
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    reqs = options.get("ssl_cert_reqs", "required").lower()
    check = options.get("ssl_check_hostname", "true").lower() not in ("false", "0", "no")
    if reqs not in ("required", "optional", "none"):
        raise RespConnectionError(
            f"redis.url: ssl_cert_reqs {reqs!r} is not required, optional or none"
        )
    context.check_hostname = check and reqs != "none"
    context.verify_mode = {
        "required": ssl.CERT_REQUIRED,
        "optional": ssl.CERT_OPTIONAL,
        "none": ssl.CERT_NONE,
    }[reqs]
    return context


class Connection:
    """One open connection: commands are sent and their replies read back in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str):
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader(replyError=RedisReplyError)
        self.where = where
        self.broken = False
        self.max_reply = MAX_REPLY_BYTES

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
            raise RespConnectionError(f"{self.where} did not answer within {timeout:g} s") from None
        except BaseException:
            self.close()
            raise
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def _next(self) -> Any:
        read = 0
        while True:
            reply = self._parser.gets()
            if reply is not False:
                return reply
            data = await self._reader.read(READ_CHUNK)
            if not data:
                raise RespConnectionError(f"{self.where} closed the connection")
            read += len(data)
            if read > self.max_reply:
                raise RespConnectionError(
                    f"{self.where} sent a reply over {self.max_reply} bytes; connection dropped"
                )
            self._parser.feed(data)

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
                    target.host, target.port, ssl=_tls_context(target.tls),
                    server_hostname=target.host,
                )  # fmt: skip
            else:
                reader, writer = await asyncio.open_connection(target.host, target.port)
    except TimeoutError:
        raise RespConnectionError(
            f"cannot connect to {target.where}: no answer within {timeout:g} s"
        ) from None
    except OSError as exc:
        reason = exc.strerror or exc
        raise RespConnectionError(f"cannot connect to {target.where}: {reason}") from None
    connection = Connection(reader, writer, target.where)
    try:
        if target.password is not None:
            login = (target.username, target.password) if target.username else (target.password,)
            await _login(connection, *login, timeout=timeout)
        if target.db:
            await connection.execute("SELECT", target.db, timeout=timeout)
        if target.client_name:
            await connection.execute("CLIENT", "SETNAME", target.client_name, timeout=timeout)
    except RedisReplyError as exc:
        connection.close()
        raise RespConnectionError(f"{target.where}: {exc}") from None
    except BaseException:
        connection.close()
        raise
    return connection


async def _login(connection: Connection, *credentials: str, timeout: float) -> None:  # noqa: ASYNC109
    try:
        await connection.execute("AUTH", *credentials, timeout=timeout)
    except RedisReplyError as exc:
        raise RespConnectionError(f"{connection.where} refused the login: {exc}") from None


async def sentinel_primary(config: Config) -> tuple[str, int]:
    """Where the configured Sentinels say the primary is now: the first that knows wins.

    Each Sentinel gets SENTINEL_TIMEOUT to connect and answer; a dead or cut off one is
    skipped for the next.
    """
    redis_cfg = config.redis
    password = redis_cfg.sentinel_password or None
    problems: list[str] = []
    for host, port in sentinel_addresses(config):
        target = Target(host=host, port=port, password=password)
        try:
            connection = await connect(target, SENTINEL_TIMEOUT)
        except RespConnectionError as exc:
            problems.append(str(exc))
            continue
        try:
            found = await connection.execute(
                "SENTINEL", "get-master-addr-by-name", redis_cfg.sentinel_master,
                timeout=SENTINEL_TIMEOUT,
            )  # fmt: skip
        except (RespConnectionError, RedisReplyError) as exc:
            problems.append(f"{target.where}: {exc}")
            continue
        finally:
            connection.close()
        if isinstance(found, list) and len(found) == 2:
            return found[0].decode(), int(found[1])
        problems.append(f"{target.where} knows no primary {redis_cfg.sentinel_master!r}")
    raise RespConnectionError(
        f"no Sentinel named the primary {redis_cfg.sentinel_master!r} ({'; '.join(problems)})"
    )


def target_finder(config: Config, password: str | None = None) -> Callable[[], Awaitable[Target]]:
    """How to find the server for each new connection, the way `RedisService` finds it.

    `password` replaces the one the config gives (or the data dir holds).
    """
    redis_cfg = config.redis
    if redis_cfg.sentinels:

        async def primary() -> Target:
            host, port = await sentinel_primary(config)
            return Target(host=host, port=port, password=password or redis_cfg.password or None)

        return primary
    if redis_cfg.url:
        target = parse_url(redis_cfg.url)
        if password is not None:
            target = dataclasses.replace(target, password=password)
    else:
        found = password if password is not None else existing_password(config)
        target = Target(path=str(socket_path(config)), password=found)

    async def fixed() -> Target:
        return target

    return fixed


class RespClient:
    """Connections to one server, made on demand and reused: concurrent calls each get one.

    The commands are those the request channel and the events channel need. Not bound to
    a loop until the first command; use it from one event loop.
    """

    def __init__(self, find: Callable[[], Awaitable[Target]]) -> None:
        self._find = find
        self._idle: list[Connection] = []

    async def _connection(self) -> Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.stale:
                return connection
            connection.close()  # the server went away (a restart, a failover): a new one
        return await connect(await self._find())

    def _release(self, connection: Connection) -> None:
        if not connection.broken:
            self._idle.append(connection)

    async def execute(
        self,
        *args: str | bytes | int | float,
        timeout: float | None = REPLY_TIMEOUT_SECONDS,  # noqa: ASYNC109
    ) -> Any:
        """Run one command on a free connection; its reply (an error reply is raised)."""
        connection = await self._connection()
        try:
            return await connection.execute(*args, timeout=timeout)
        finally:
            self._release(connection)

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

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, confirm_seconds: float = CONNECT_TIMEOUT_SECONDS
    ) -> AsyncIterator[Subscription]:
        """A connection of its own subscribed to `channel`, once the server confirmed it."""
        connection = await connect(await self._find())
        try:
            connection.send("SUBSCRIBE", channel)
            confirmed = await connection.reply(confirm_seconds)
            if not (isinstance(confirmed, list) and confirmed[:1] == [b"subscribe"]):
                raise RespConnectionError(f"{connection.where} did not confirm the subscribe")
            yield Subscription(connection)
        finally:
            connection.close()

    async def aclose(self) -> None:
        """Close every connection; the client may be used again (it reconnects)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class Subscription:
    """The messages of a subscribed channel, one by one."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def message(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """The next message's data (None for `timeout` waits as long as it takes)."""
        while True:
            reply = await self._connection.reply(timeout)
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                data: bytes = reply[2]
                return data
