"""heroagent.resp, the client's own Redis connection, against real valkey servers."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from core.config import Config, RedisConfig, load_config
from heroagent import Client, EngineUnreachable
from heroagent.resp import (
    Connection,
    RedisReplyError,
    RespClient,
    RespConnectionError,
    Target,
    connect,
    pack,
    parse_url,
    sentinel_primary,
    target_finder,
)
from tests.core.test_serve import Serve
from tests.helpers import ValkeyProcess, async_poll, free_port
from tests.sentinels import MASTER, SentinelSet


def _admin(valkey: ValkeyProcess) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(valkey.socket_path))


def _url_client(url: str) -> RespClient:
    return RespClient(target_finder(Config(redis=RedisConfig(url=url))))


def test_commands_are_packed_as_arrays_of_bulk_strings() -> None:
    assert pack(["RPUSH", "k", b"\x00v", 3, 0.5]) == (
        b"*5\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$2\r\n\x00v\r\n$1\r\n3\r\n$3\r\n0.5\r\n"
    )


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("redis://h", Target(host="h", port=6379)),
        ("redis://h:7000/3", Target(host="h", port=7000, db=3)),
        ("redis://:p%40ss@h", Target(host="h", password="p@ss")),
        ("redis://user:pw@h?db=2", Target(host="h", username="user", password="pw", db=2)),
        ("rediss://h:6380", Target(host="h", port=6380, tls={})),
        (
            "rediss://h?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem",
            Target(host="h", tls={"ssl_cert_reqs": "none", "ssl_ca_certs": "/ca.pem"}),
        ),
        ("unix:///run/v.sock", Target(path="/run/v.sock")),
        ("unix://:pw@/run/v.sock?db=5", Target(path="/run/v.sock", password="pw", db=5)),
        ("redis://h?client_name=app-1", Target(host="h", client_name="app-1")),
    ],
)
def test_urls_are_read_as_redis_py_reads_them(url: str, target: Target) -> None:
    assert parse_url(url) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h/x", "db 'x' is not a number"),
        ("redis://h?socket_timeout=1", "unknown option 'socket_timeout'"),
        ("redis://h:99999", "has no valid port"),
        ("http://h", "'http' is not redis, rediss or unix"),
        ("redis://h?client_name=a%20b", "client_name 'a b' has a space"),
    ],
)
def test_bad_urls_are_refused_naming_what(url: str, message: str) -> None:
    with pytest.raises(RespConnectionError, match=message):
        parse_url(url)


async def test_tcp_unix_socket_db_and_errors(valkey: ValkeyProcess) -> None:
    over_tcp = _url_client(f"redis://127.0.0.1:{valkey.port}/3")
    over_unix = _url_client(f"unix://{valkey.socket_path}?db=3")
    try:
        assert await over_tcp.rpush("l", "a", "b") == 2
        assert await over_unix.rpush("l", "c") == 3
        assert _admin(valkey).llen("l") == 0  # db 0: the clients wrote to db 3
        assert await over_unix.blpop(["l"], 1) == [b"l", b"a"]
        assert await over_tcp.lrem("l", 1, "c") == 1
        assert await over_tcp.blpop(["empty"], 0.1) is None
        with pytest.raises(RedisReplyError, match="wrong number of arguments"):
            await over_tcp.execute("RPUSH", "l")
        # The connection is fine after an error reply.
        assert await over_tcp.execute("PING") == b"PONG"
    finally:
        await over_tcp.aclose()
        await over_unix.aclose()


def require_logins(valkey: ValkeyProcess) -> str:
    """An ACL user `worker` (w-secret) and a password for the default user (d-secret).

    The server's host:port.
    """
    admin = _admin(valkey)
    admin.acl_setuser(
        "worker", enabled=True, passwords=["+w-secret"], commands=["+@all"], keys=["*"],
        channels=["*"],
    )  # fmt: skip
    admin.config_set("requirepass", "d-secret")
    return f"127.0.0.1:{valkey.port}"


async def test_password_and_acl_user(valkey: ValkeyProcess) -> None:
    base = require_logins(valkey)
    clients = [
        _url_client(f"redis://worker:w-secret@{base}"),
        _url_client(f"redis://:d-secret@{base}"),
    ]
    try:
        for client in clients:
            assert await client.execute("PING") == b"PONG"
        assert await clients[0].execute("ACL", "WHOAMI") == b"worker"
        wrong = _url_client(f"redis://worker:nope@{base}")
        with pytest.raises(RespConnectionError, match=f"{base} refused the login: WRONGPASS"):
            await wrong.execute("PING")
        anonymous = _url_client(f"redis://{base}")
        clients.append(anonymous)
        with pytest.raises(RedisReplyError, match="NOAUTH"):
            await anonymous.execute("PING")
        # The client library turns both into EngineUnreachable.
        with (
            Client(url=f"redis://worker:nope@{base}") as blocking,
            pytest.raises(EngineUnreachable, match="refused the login"),
        ):
            blocking.get(1)
    finally:
        for client in clients:
            await client.aclose()


def test_the_managed_servers_password_is_read_from_the_data_dir(served: Serve) -> None:
    config = load_config(None, env={}, flags={"data_dir": str(served.data)}).config
    config = replace(config, redis=replace(config.redis, tcp_port=0))

    async def ping() -> object:
        client = RespClient(target_finder(config))
        try:
            return await client.execute("PING")
        finally:
            await client.aclose()

    assert asyncio.run(ping()) == b"PONG"


async def test_concurrent_calls_get_connections_of_their_own(valkey: ValkeyProcess) -> None:
    client = _url_client(valkey.url)
    try:
        waiting = [asyncio.create_task(client.blpop([f"q{i}"], 10)) for i in range(3)]
        for i in range(3):
            # Each BLPOP blocks its own connection; pushes on another get through.
            await client.rpush(f"q{i}", f"v{i}")
        assert await asyncio.gather(*waiting) == [
            [f"q{i}".encode(), f"v{i}".encode()] for i in range(3)
        ]
    finally:
        await client.aclose()


async def test_a_cancelled_command_drops_its_connection(valkey: ValkeyProcess) -> None:
    client = _url_client(valkey.url)
    try:
        blocked = asyncio.create_task(client.blpop(["never"], 30))
        admin = _admin(valkey)

        async def blocking() -> bool:
            return int(admin.info("clients")["blocked_clients"]) > 0

        await async_poll(blocking, 10, "the BLPOP to block")
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        # Its reply (if the server sent one) cannot reach the next command.
        await client.rpush("never", "late")
        assert await client.execute("LLEN", "never") == 1
    finally:
        await client.aclose()


async def test_a_command_in_flight_as_the_client_closes_closes_its_connection(
    valkey: ValkeyProcess,
) -> None:
    client = _url_client(valkey.url)
    admin = _admin(valkey)
    blocked = asyncio.create_task(client.blpop(["closing"], 30))

    async def blocking() -> bool:
        return int(admin.info("clients")["blocked_clients"]) > 0

    await async_poll(blocking, 10, "the BLPOP to block")
    await client.aclose()
    admin.rpush("closing", "answer")
    assert await blocked == [b"closing", b"answer"]  # its caller still gets its reply

    async def gone() -> bool:
        # The admin's own connection is the only one left (a kept one would stay open).
        return int(admin.info("clients")["connected_clients"]) == 1

    await async_poll(gone, 10, "the connection to close")
    assert await client.execute("PING") == b"PONG"  # used again, it reconnects
    await client.aclose()


async def test_subscribe_gets_the_channels_messages(valkey: ValkeyProcess) -> None:
    client = _url_client(valkey.url)
    async with client.subscribe("events") as subscription:
        _admin(valkey).publish("other", "not this")
        _admin(valkey).publish("events", '{"id": 1}')
        assert await subscription.message(5) == b'{"id": 1}'
    await client.aclose()


async def test_a_silent_server_times_out_and_a_huge_reply_is_dropped(
    valkey: ValkeyProcess,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        # The kernel completes the connect; nothing ever answers the login.
        target = Target(host="127.0.0.1", port=silent.getsockname()[1], password="x")
        with pytest.raises(RespConnectionError, match=r"did not answer within 0\.2 s"):
            await connect(target, timeout=0.2)
    with pytest.raises(RespConnectionError, match=r"cannot connect to 127\.0\.0\.1:"):
        await connect(Target(host="127.0.0.1", port=free_port()))
    _admin(valkey).set("big", "x" * 5000)
    connection: Connection = await connect(parse_url(valkey.url))
    connection.max_reply = 4096
    with pytest.raises(RespConnectionError, match="reply over 4096 bytes"):
        await connection.execute("GET", "big")
    assert connection.broken


def _certificate(directory: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextlib.asynccontextmanager
async def _tls_proxy(cert: Path, key: Path, socket_path: Path) -> AsyncIterator[int]:
    """A TLS front for a valkey without TLS support (the bundled one has none)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_rediss_verifies_the_servers_certificate(
    valkey: ValkeyProcess, short_tmp: Path
) -> None:
    cert, key = _certificate(short_tmp)
    async with _tls_proxy(cert, key, valkey.socket_path) as port:
        trusting = _url_client(f"rediss://localhost:{port}/2?ssl_ca_certs={cert}")
        unverified = _url_client(f"rediss://127.0.0.1:{port}?ssl_cert_reqs=none")
        strict = _url_client(f"rediss://localhost:{port}")
        try:
            assert await trusting.rpush("tls", "a") == 1
            assert await unverified.execute("PING") == b"PONG"
            with pytest.raises(RespConnectionError, match="certificate verify failed"):
                await strict.execute("PING")
        finally:
            for client in (trusting, unverified, strict):
                await client.aclose()
    assert redis.Redis(unix_socket_path=str(valkey.socket_path), db=2).llen("tls") == 1


async def test_the_sentinels_name_the_primary(sentinel_set: SentinelSet) -> None:
    config = Config(redis=sentinel_set.redis_config())
    primary = sentinel_set.primary
    assert await sentinel_primary(config) == (primary.host, primary.port)
    # A Sentinel that is down is skipped for the next.
    dead = replace(config.redis, sentinels=[f"127.0.0.1:{free_port()}", *config.redis.sentinels])
    client = RespClient(target_finder(replace(config, redis=dead)))
    try:
        assert await client.rpush("via-sentinel", "x") == 1
    finally:
        await client.aclose()
    with primary.client(sentinel_set.password) as direct:
        assert direct.llen("via-sentinel") == 1
    unknown = replace(config, redis=replace(config.redis, sentinel_master="nobody"))
    with pytest.raises(RespConnectionError, match="no Sentinel named the primary 'nobody'"):
        await sentinel_primary(unknown)
    assert config.redis.sentinel_master == MASTER


async def test_an_idle_connection_the_server_closed_is_not_reused(valkey: ValkeyProcess) -> None:
    client = _url_client(valkey.url)
    try:
        assert await client.execute("PING") == b"PONG"
        _admin(valkey).client_kill_filter(_type="normal", skipme=True)  # as a restart does

        async def seen_closed() -> bool:
            await asyncio.sleep(0.01)  # the loop reads the end of file meanwhile
            return all(connection.stale for connection in client._idle)

        await async_poll(seen_closed, 10, "the client to see its idle connection closed")
        assert await client.execute("PING") == b"PONG"  # on a new connection
    finally:
        await client.aclose()
