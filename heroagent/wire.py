"""RESP without I/O: targets, URLs, command packing, reply reading, login and Sentinels.

The client library has two connections to the engine's Redis server, an asyncio one
(heroagent.resp, for AsyncClient) and a blocking one (heroagent.resp_sync, for Client
and the command line, which then never imports asyncio). Everything they say and how
they read the answers is here, once: the command encoding, hiredis' reply parser with
its size limit, the login (AUTH, SELECT, CLIENT SETNAME) and the Sentinel query, the
last two as plans (core.channel) that each connection runs with its own sockets.

Errors: a connection that cannot be made, is refused a login or breaks is a
`RespConnectionError` (a ConnectionError, so an OSError); an error reply is a
`RedisReplyError`. The client library turns both into EngineUnreachable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

import hiredis

from core.channel import Command, Plan
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


class DeadlinePassed(Exception):
    """The time a whole call (a wait) was given is up: not an OSError, nothing broke."""


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


def tls_context(options: dict[str, str]) -> ssl.SSLContext:
    """The TLS settings of a rediss:// URL's options (ssl loads only for TLS)."""
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


def connect_failed(target: Target, exc: BaseException, timeout: float) -> RespConnectionError:
    """The error for a socket that could not be opened (`exc`: a timeout or an OSError)."""
    if isinstance(exc, TimeoutError):
        return RespConnectionError(
            f"cannot connect to {target.where}: no answer within {timeout:g} s"
        )
    reason = (exc.strerror if isinstance(exc, OSError) else None) or exc
    return RespConnectionError(f"cannot connect to {target.where}: {reason}")


class Replies:
    """The replies in the bytes a connection reads: hiredis' parser, with a size limit."""

    def __init__(self, where: str) -> None:
        self._parser = hiredis.Reader(replyError=RedisReplyError)
        self.where = where
        self.max_reply = MAX_REPLY_BYTES
        self._read = 0

    def next(self) -> Any:
        """The next whole reply read, or False when more bytes are needed."""
        reply = self._parser.gets()
        if reply is not False:
            self._read = 0
        return reply

    def feed(self, data: bytes) -> None:
        """Bytes read from the socket; none means the server closed the connection."""
        if not data:
            raise RespConnectionError(f"{self.where} closed the connection")
        self._read += len(data)
        if self._read > self.max_reply:
            raise RespConnectionError(
                f"{self.where} sent a reply over {self.max_reply} bytes; connection dropped"
            )
        self._parser.feed(data)

    def silent(self, timeout: float | None) -> RespConnectionError:
        """The error for a server that did not answer within `timeout`."""
        return RespConnectionError(f"{self.where} did not answer within {timeout:g} s")


class Link(Protocol):
    """What a pool needs of a connection, asyncio or blocking."""

    broken: bool

    @property
    def stale(self) -> bool: ...

    def close(self) -> None: ...


L = TypeVar("L", bound=Link)


class Idle(Generic[L]):
    """The idle connections of a client, reused newest first; threads may share it.

    Closed once: a connection given back after that (its command was in flight while
    the client closed) is closed, not kept. A client that closes makes a new one.
    """

    def __init__(self) -> None:
        self._idle: list[L] = []
        self._closed = False

    def take(self) -> L | None:
        """An idle connection still good for a command, or None: make a new one."""
        while True:
            try:
                connection = self._idle.pop()  # atomic, unlike a check then a pop
            except IndexError:
                return None
            if not connection.stale:
                return connection
            connection.close()  # the server went away (a restart, a failover)

    def give(self, connection: L) -> None:
        """A connection done with its command; a broken one is dropped."""
        if self._closed:
            connection.close()
        elif not connection.broken:
            self._idle.append(connection)

    def close(self) -> None:
        """Close every idle connection, and each one in use as it comes back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def __iter__(self) -> Iterator[L]:
        return iter(list(self._idle))

    def __len__(self) -> int:
        return len(self._idle)


class Subscribed(Generic[L]):
    """A connection subscribed to a channel; closing it unsubscribes."""

    def __init__(self, connection: L) -> None:
        self._connection = connection

    def close(self) -> None:
        """Unsubscribe by closing the connection (idempotent)."""
        self._connection.close()


def checked(reply: Any) -> Any:
    """The reply, or its error raised."""
    if isinstance(reply, RedisReplyError):
        raise reply
    return reply


def confirm_subscribe(reply: Any, where: str) -> None:
    """Raise unless `reply` is the server's confirmation of a SUBSCRIBE."""
    if not (isinstance(reply, list) and reply[:1] == [b"subscribe"]):
        raise RespConnectionError(f"{where} did not confirm the subscribe")


def message_data(reply: Any) -> bytes | None:
    """A subscribed connection's reply: the data of a published message, else None."""
    if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
        data: bytes = reply[2]
        return data
    return None


def login(target: Target) -> Plan[None]:
    """The commands a new connection sends first: AUTH, SELECT and CLIENT SETNAME."""
    try:
        if target.password is not None:
            user = (target.username,) if target.username else ()
            try:
                yield Command(("AUTH", *user, target.password))
            except RedisReplyError as exc:
                raise RespConnectionError(f"{target.where} refused the login: {exc}") from None
        if target.db:
            yield Command(("SELECT", target.db))
        if target.client_name:
            yield Command(("CLIENT", "SETNAME", target.client_name))
    except RedisReplyError as exc:
        raise RespConnectionError(f"{target.where}: {exc}") from None


class Probe(NamedTuple):
    """Connect to `target`, send one command, close: its reply (a step of `find_target`)."""

    target: Target
    args: tuple[str | int, ...]
    timeout: float


def sentinel_primary(config: Config) -> Plan[tuple[str, int]]:
    """Where the configured Sentinels say the primary is now: the first that knows wins.

    Each Sentinel gets SENTINEL_TIMEOUT to connect and answer; a dead or cut off one is
    skipped for the next. A plan of `Probe`s.
    """
    redis_cfg = config.redis
    password = redis_cfg.sentinel_password or None
    problems: list[str] = []
    for host, port in sentinel_addresses(config):
        target = Target(host=host, port=port, password=password)
        query = ("SENTINEL", "get-master-addr-by-name", redis_cfg.sentinel_master)
        try:
            found = yield Probe(target, query, SENTINEL_TIMEOUT)
        except RespConnectionError as exc:
            problems.append(str(exc))
            continue
        except RedisReplyError as exc:
            problems.append(f"{target.where}: {exc}")
            continue
        if isinstance(found, list) and len(found) == 2:
            return found[0].decode(), int(found[1])
        problems.append(f"{target.where} knows no primary {redis_cfg.sentinel_master!r}")
    raise RespConnectionError(
        f"no Sentinel named the primary {redis_cfg.sentinel_master!r} ({'; '.join(problems)})"
    )


def find_target(config: Config, password: str | None = None) -> Callable[[], Plan[Target]]:
    """How to find the server for each new connection, the way `RedisService` finds it.

    `password` replaces the one the config gives (or the data dir holds). With Sentinels
    each call asks them anew, so a reconnect after a failover finds the promoted replica.
    """
    redis_cfg = config.redis
    if redis_cfg.sentinels:

        def primary() -> Plan[Target]:
            host, port = yield from sentinel_primary(config)
            return Target(host=host, port=port, password=password or redis_cfg.password or None)

        return primary
    if redis_cfg.url:
        target = parse_url(redis_cfg.url)
        if password is not None:
            target = dataclasses.replace(target, password=password)
    else:
        found = password if password is not None else existing_password(config)
        target = Target(path=str(socket_path(config)), password=found)

    def fixed() -> Plan[Target]:
        return target
        yield  # a plan that needs no step

    return fixed
