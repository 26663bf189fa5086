"""The blocking RESP connection (heroagent.resp_sync) against real servers: every way in."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from core.config import Config, RedisConfig
from heroagent.resp_sync import SyncRespClient, connect
from heroagent.wire import (
    DeadlinePassed,
    RedisReplyError,
    RespConnectionError,
    Target,
    find_target,
    parse_url,
)
from tests.client.test_resp import _admin, _certificate, _tls_proxy, require_logins
from tests.helpers import ValkeyProcess, free_port, wait_for
from tests.sentinels import SentinelSet


def _url_client(url: str) -> SyncRespClient:
    return SyncRespClient(find_target(Config(redis=RedisConfig(url=url))))


def test_tcp_unix_socket_db_client_name_and_errors(valkey: ValkeyProcess) -> None:
    over_tcp = _url_client(f"redis://127.0.0.1:{valkey.port}/3?client_name=sync-1")
    over_unix = _url_client(f"unix://{valkey.socket_path}?db=3")
    try:
        assert over_tcp.execute("RPUSH", "l", "a", "b") == 2
        assert over_unix.execute("RPUSH", "l", "c") == 3
        assert _admin(valkey).llen("l") == 0  # db 0: the clients wrote to db 3
        assert over_unix.execute("BLPOP", "l", 1) == [b"l", b"a"]
        assert over_tcp.execute("BLPOP", "empty", 0.1) is None
        assert over_tcp.execute("CLIENT", "GETNAME") == b"sync-1"
        with pytest.raises(RedisReplyError, match="wrong number of arguments"):
            over_tcp.execute("RPUSH", "l")
        # The connection is fine after an error reply, and it is the one reused.
        assert over_tcp.execute("PING") == b"PONG"
        assert len(over_tcp._idle) == 1
    finally:
        over_tcp.close()
        over_unix.close()


def test_password_and_acl_user(valkey: ValkeyProcess) -> None:
    base = require_logins(valkey)
    assert _url_client(f"redis://worker:w-secret@{base}").execute("ACL", "WHOAMI") == b"worker"
    assert _url_client(f"redis://:d-secret@{base}").execute("PING") == b"PONG"
    with pytest.raises(RespConnectionError, match=f"{base} refused the login: WRONGPASS"):
        _url_client(f"redis://worker:nope@{base}").execute("PING")
    with pytest.raises(RedisReplyError, match="NOAUTH"):
        _url_client(f"redis://{base}").execute("PING")
    with pytest.raises(RespConnectionError, match=f"{base}: .*DB index is out of range"):
        _url_client(f"redis://:d-secret@{base}/999").execute("PING")


def test_a_silent_server_times_out_and_a_huge_reply_is_dropped(valkey: ValkeyProcess) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        # The kernel completes the connect; nothing ever answers the login.
        target = Target(host="127.0.0.1", port=silent.getsockname()[1], password="x")
        with pytest.raises(RespConnectionError, match=r"did not answer within 0\.2 s"):
            connect(target, timeout=0.2)
    with pytest.raises(RespConnectionError, match=r"cannot connect to 127\.0\.0\.1:"):
        connect(Target(host="127.0.0.1", port=free_port()))
    with pytest.raises(RespConnectionError, match=r"cannot connect to /nowhere\.sock"):
        connect(Target(path="/nowhere.sock"))
    _admin(valkey).set("big", "x" * 5000)
    connection = connect(parse_url(valkey.url))
    connection._replies.max_reply = 4096
    with pytest.raises(RespConnectionError, match="reply over 4096 bytes"):
        connection.execute("GET", "big")
    assert connection.broken


def test_a_deadline_ends_a_read_and_drops_its_connection(valkey: ValkeyProcess) -> None:
    client = _url_client(valkey.url)
    try:
        with pytest.raises(DeadlinePassed):
            client.execute("BLPOP", "never", 30, deadline=time.monotonic() + 0.2)
        assert len(client._idle) == 0  # left mid-reply: not one to reuse
        with client.subscribe("events") as subscription:
            _admin(valkey).publish("other", "not this")
            _admin(valkey).publish("events", '{"id": 1}')
            assert subscription.message(time.monotonic() + 10) == b'{"id": 1}'
            with pytest.raises(DeadlinePassed):
                subscription.message(time.monotonic() + 0.1)
        assert client.execute("LLEN", "never") == 0
    finally:
        client.close()


def test_an_idle_connection_the_server_closed_is_not_reused(valkey: ValkeyProcess) -> None:
    client = _url_client(valkey.url)
    try:
        assert client.execute("PING") == b"PONG"
        _admin(valkey).client_kill_filter(_type="normal", skipme=True)  # as a restart does
        wait_for(lambda: all(c.stale for c in client._idle), 10, "the close to be seen")
        assert client.execute("PING") == b"PONG"  # on a new connection
    finally:
        client.close()


async def test_rediss_verifies_the_servers_certificate(
    valkey: ValkeyProcess, short_tmp: Path
) -> None:
    cert, key = _certificate(short_tmp)
    async with _tls_proxy(cert, key, valkey.socket_path) as port:
        # The proxy runs on this loop: the blocking calls go to a thread.
        def calls() -> None:
            trusting = _url_client(f"rediss://localhost:{port}/2?ssl_ca_certs={cert}")
            assert trusting.execute("RPUSH", "tls", "a") == 1
            trusting.close()
            unverified = _url_client(f"rediss://127.0.0.1:{port}?ssl_cert_reqs=none")
            assert unverified.execute("PING") == b"PONG"
            unverified.close()
            with pytest.raises(RespConnectionError, match="certificate verify failed"):
                _url_client(f"rediss://localhost:{port}").execute("PING")

        await asyncio.to_thread(calls)
    assert redis.Redis(unix_socket_path=str(valkey.socket_path), db=2).llen("tls") == 1


def test_the_sentinels_name_the_primary(sentinel_set: SentinelSet) -> None:
    config = Config(redis=sentinel_set.redis_config())
    # A Sentinel that is down is skipped for the next.
    dead = replace(config.redis, sentinels=[f"127.0.0.1:{free_port()}", *config.redis.sentinels])
    client = SyncRespClient(find_target(replace(config, redis=dead)))
    try:
        assert client.execute("RPUSH", "via-sentinel-sync", "x") == 1
    finally:
        client.close()
    with sentinel_set.primary.client(sentinel_set.password) as direct:
        assert direct.llen("via-sentinel-sync") == 1
    unknown = replace(config, redis=replace(config.redis, sentinel_master="nobody"))
    with pytest.raises(RespConnectionError, match="no Sentinel named the primary 'nobody'"):
        SyncRespClient(find_target(unknown)).execute("PING")


def test_a_blocking_command_in_flight_as_the_client_closes_closes_its_connection(
    valkey: ValkeyProcess,
) -> None:
    client = _url_client(valkey.url)
    admin = _admin(valkey)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    blocked = pool.submit(client.execute, "BLPOP", "closing", 30, timeout=40)
    wait_for(lambda: int(admin.info("clients")["blocked_clients"]) > 0, 10, "the BLPOP")
    client.close()
    admin.rpush("closing", "answer")
    assert blocked.result(30) == [b"closing", b"answer"]
    pool.shutdown()
    wait_for(lambda: int(admin.info("clients")["connected_clients"]) == 1, 10, "the close")
