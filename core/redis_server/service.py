"""RedisService: runs and heals a valkey/redis-server child, or uses an external server by URL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from core.config import Config
from core.events.bus import EventBus
from core.redis_server.address import (
    MAX_SOCKET_PATH,
    SENTINEL_TIMEOUT,
    existing_password,
    is_external,
    password_file,
    sentinel_addresses,
    socket_path,
)
from core.redis_server.binary import ServerBinaryNotFound, find_server_binary
from core.redis_server.inplace import sending_in_place
from core.redis_server.process import clear_stale_pidfile, port_in_use, spawn, stop_process
from core.services import Service, ServiceStartError, ServiceState

START_TIMEOUT = 10.0
RESTART_BACKOFF_MAX = 5.0
# The reply shapes every client of the engine reads (see `client`).
RESP_PROTOCOL = 2
# The server's own user for what clients may not do (SHUTDOWN); its password never leaves
# this process: the config file holds only its SHA-256.
ADMIN_USER = "engine"
# Commands no client of the managed server needs, and which would let anyone holding the
# shared password weaken durability (CONFIG SET appendfsync no), write files where it likes
# (CONFIG SET dir + SAVE), replicate the data away (REPLICAOF), or stop the server.
CLIENT_DENIED = (
    "acl",
    "bgsave",
    "cluster",
    "config",
    "debug",
    "failover",
    "migrate",
    "module",
    "monitor",
    "psync",
    "replicaof",
    "restore",
    "save",
    "shutdown",
    "slaveof",
    "sync",
)


def redact_url(url: str) -> str:
    """The URL with its password, if any, replaced by ***: fit for logs and screens."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class SentinelRedis(aioredis.Redis):
    """A client of the primary the Sentinels name; closing it closes its Sentinel clients.

    redis-py's pool asks the Sentinels for the primary's address on every new
    connection, so after a failover the next connect reaches the promoted replica.
    """

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the connections to the primary and to the Sentinels."""
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.sentinel_manager is not None:
                for client in self.sentinel_manager.sentinels:
                    await client.aclose()


# What servers answer a client that has no password or a wrong one (valkey's and Redis'
# words; redis-py raises them as a ConnectionError without their code: over RESP2 a
# missing password reads "Authentication required.", over RESP3 it is HELLO's refusal).
_NEEDS_PASSWORD = (
    "NOAUTH",
    "Authentication required",
    "HELLO must be called with the client already authenticated",
)
_WRONG_PASSWORD = ("WRONGPASS", "invalid username-password pair")


def login_refused(exc: BaseException) -> str:
    """Why the server would not log this client in, in words; "" when that is not the error.

    Waiting does not help with that: the start gives up at once.
    """
    text = str(exc)
    if any(words in text for words in _NEEDS_PASSWORD):
        return (
            "it asks for a password and none was given: put it in the URL "
            "(redis://:PASSWORD@HOST:PORT/ or unix://:PASSWORD@/path/to.sock)"
        )
    if any(words in text for words in _WRONG_PASSWORD):
        return "it refused the password (or user) the URL gives"
    return ""


def unreachable_reason(exc: BaseException, config: Config) -> str:
    """Why the server could not be reached, in words (redis-py's text names its objects)."""
    refused = login_refused(exc)
    if refused:
        return f"{refused} ({exc})"
    if isinstance(exc, MasterNotFoundError):
        asked = ", ".join(config.redis.sentinels)
        return (
            f"no Sentinel ({asked}) names a primary for {config.redis.sentinel_master!r}: "
            "they are down, unreachable, or none of them monitors that name"
        )
    return str(exc)


class RedisService(Service):
    """The engine's Redis-protocol server."""

    name = "redis"
    # Longer than the stop ladder (SHUTDOWN, SIGTERM, SIGKILL), which bounds itself.
    stop_timeout = 20.0

    def __init__(self, config: Config, bus: EventBus) -> None:
        super().__init__(bus)
        self.config = config
        self.base = config.data_path / "redis"
        self.conf_path = self.base / "valkey.conf"
        self.pidfile = self.base / "valkey.pid"
        self.logfile = self.base / "valkey.log"
        self.outfile = self.base / "valkey.out"
        self.socket_path = socket_path(config)
        # Read here too, so a CLI command reaches a server an engine already runs.
        self.password: str | None = existing_password(config)
        self._admin_password = secrets.token_urlsafe(32)
        self.version = ""
        self.restarts = 0
        # Primary-address changes this engine saw (Sentinel only), and the last address.
        self.failovers = 0
        self._primary: tuple[str, int] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def external(self) -> bool:
        """True when the engine uses a server it did not start."""
        return is_external(self.config)

    @property
    def sentinel(self) -> bool:
        """True when the Sentinels name the server (and follow it through a failover)."""
        return bool(self.config.redis.sentinels)

    # -- what the rest of the engine uses ---------------------------------------------

    def client(self, **options: Any) -> aioredis.Redis:
        """A new asyncio client for this server (unix socket when local: fewer syscalls).

        The one place the engine, `heroagent worker` and the CLI's engine-side commands
        build their connections (the client library has its own, `heroagent.wire`), so
        all of them follow a Sentinel failover; their sends make no task per command
        (`core.redis_server.inplace`). They speak RESP2 whatever redis-py's default: from
        8.0 it speaks RESP3 and hands back RESP2's reply shapes only while no protocol is
        asked for, and the engine reads those shapes (asked for by name, RESP3's maps are
        not read; the config refuses a URL that asks for them).
        """
        options.setdefault("protocol", RESP_PROTOCOL)
        if self.sentinel:
            return sending_in_place(self._sentinel_client(**options))
        if self.external:
            return sending_in_place(aioredis.Redis.from_url(self.config.redis.url, **options))
        return sending_in_place(
            aioredis.Redis(
                unix_socket_path=str(self.socket_path), password=self.password, **options
            )
        )

    def _sentinel_options(self) -> dict[str, Any]:
        """How to reach the Sentinels themselves (not the servers they name)."""
        return {
            "password": self.config.redis.sentinel_password or None,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "socket_timeout": SENTINEL_TIMEOUT,
        }

    def _sentinel_client(self, **options: Any) -> aioredis.Redis:
        redis_cfg = self.config.redis
        sentinel = Sentinel(
            sentinel_addresses(self.config),
            sentinel_kwargs={**self._sentinel_options(), "retry": Retry(NoBackoff(), 0)},
        )
        options.setdefault("password", redis_cfg.password or None)
        client = cast(
            SentinelRedis,
            sentinel.master_for(redis_cfg.sentinel_master, redis_class=SentinelRedis, **options),
        )
        client.sentinel_manager = sentinel
        return client

    def master_address(self) -> tuple[str, int]:
        """Where the Sentinels say the primary is now, asked with blocking calls (CLI use).

        Raises redis' MasterNotFoundError (a ConnectionError) when none of them knows.
        """
        from redis.sentinel import Sentinel as BlockingSentinel

        redis_cfg = self.config.redis
        sentinel = BlockingSentinel(
            sentinel_addresses(self.config), sentinel_kwargs=self._sentinel_options()
        )
        try:
            found = sentinel.discover_master(redis_cfg.sentinel_master)
            host, port = found
        finally:
            for client in sentinel.sentinels:
                client.close()
        return str(host), int(port)

    async def primary_address(self) -> tuple[str, int] | None:
        """Where the Sentinels say the primary is now; None without Sentinels.

        Each answer that differs from the one before counts as a failover: changes are
        seen when someone asks (the Dashboard does every few seconds), so a primary that
        moved away and back between two asks counts for none.
        """
        if not self.sentinel:
            return None
        sentinel = Sentinel(
            sentinel_addresses(self.config),
            sentinel_kwargs={**self._sentinel_options(), "retry": Retry(NoBackoff(), 0)},
        )
        try:
            host, port = await sentinel.discover_master(self.config.redis.sentinel_master)
        finally:
            for client in sentinel.sentinels:
                await client.aclose()
        address = (str(host), int(port))
        if self._primary is not None and address != self._primary:
            self.failovers += 1
        self._primary = address
        return address

    def loop_client(self, **options: Any) -> aioredis.Redis:
        """A client for code that runs its own retry loop (and must stop when cancelled).

        redis-py's default retry policy re-runs a command after an error with backoff,
        which also swallows a cancellation that arrives mid-read for up to a minute.
        """
        return self.client(retry=Retry(NoBackoff(), 0), **options)

    def _probe_client(self) -> aioredis.Redis:
        """A client that fails at once: probes and SHUTDOWN must not sit in retry backoff."""
        return self.loop_client(socket_connect_timeout=1.0, socket_timeout=5.0)

    def cli_invocation(self) -> tuple[list[str], dict[str, str]]:
        """Arguments and environment that point valkey-cli at this server, logged in.

        The password travels in REDISCLI_AUTH, which both valkey-cli and redis-cli read,
        so it never shows in the process list.
        """
        env: dict[str, str] = {}
        if self.sentinel:
            host, port = self.master_address()
            if self.config.redis.password:
                env["REDISCLI_AUTH"] = self.config.redis.password
            return ["-h", host, "-p", str(port)], env
        if self.external:
            parts = urlsplit(self.config.redis.url)
            if parts.password:
                env["REDISCLI_AUTH"] = parts.password
            if parts.scheme == "unix":
                args = ["-s", parts.path]
            else:
                args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
                if parts.scheme == "rediss":
                    args.append("--tls")
            if parts.username:
                args += ["--user", parts.username]
            return args, env
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        return ["-s", str(self.socket_path)], env

    def _admin_client(self) -> aioredis.Redis:
        """A probe client logged in as the admin user, the one allowed to SHUTDOWN."""
        return aioredis.Redis(
            unix_socket_path=str(self.socket_path),
            username=ADMIN_USER,
            password=self._admin_password,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=1.0,
            socket_timeout=5.0,
            protocol=RESP_PROTOCOL,
        )

    def url(self, *, with_password: bool = False) -> str:
        """A URL other processes can use to reach this server (password left out unless asked).

        `with_password` gives the URL a `heroagent worker --redis-url` on another machine
        needs; it is a secret, so it is never shown or logged.
        """
        if self.sentinel:
            # No URL names a server that moves: tell where the Sentinels are instead.
            return self.address()
        if self.external:
            return self.config.redis.url if with_password else redact_url(self.config.redis.url)
        secret = f":{self.password}@" if with_password and self.password else ""
        if self.config.redis.tcp_port:
            return f"redis://{secret}{self.config.host}:{self.config.redis.tcp_port}"
        if secret:
            return f"unix://{secret}{self.socket_path}"
        return f"unix://{self.socket_path}"

    def address(self) -> str:
        """TCP and unix addresses, as shown to people."""
        if self.sentinel:
            redis_cfg = self.config.redis
            return f"sentinel:{redis_cfg.sentinel_master}@{','.join(redis_cfg.sentinels)}"
        if self.external:
            return redact_url(self.config.redis.url)
        parts = []
        if self.config.redis.tcp_port:
            parts.append(f"{self.config.host}:{self.config.redis.tcp_port}")
        parts.append(f"unix:{self.socket_path}")
        return " ".join(parts)

    def pid(self) -> int | None:
        """The server child's pid."""
        if self._proc is not None and self._proc.returncode is None:
            return self._proc.pid
        return None

    def detail(self) -> str:
        """Server version and restart count."""
        text = self.version
        if self.restarts:
            text += f" (restarted {self.restarts}x)"
        return text

    # -- start and stop -----------------------------------------------------------------

    async def _start(self) -> None:
        self._stopping = False
        if self.external:
            await self._wait_ready(None, f"cannot reach Redis at {self.address()}")
            return
        try:
            binary = find_server_binary(self.config.redis.server_binary)
        except ServerBinaryNotFound as exc:
            raise ServiceStartError(str(exc)) from None
        self._prepare(binary)
        await clear_stale_pidfile(self.pidfile, self.conf_path)
        await self._launch(binary)
        self._supervisor = asyncio.create_task(self._supervise(binary), name="redis-supervisor")

    def _prepare(self, binary: Path) -> None:
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        socket_dir = self.socket_path.parent
        socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise ServiceStartError(
                f"redis.unix_socket_path {self.socket_path} is longer than {MAX_SOCKET_PATH} "
                "characters; choose a shorter path"
            )
        self.password = self._load_password()
        # Written private from the start: it holds the client password.
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self._server_conf())
        self.log.debug("using %s", binary)

    @property
    def password_file(self) -> Path:
        """The file holding the client password (0600), for the CLI and local workers."""
        return password_file(self.config)

    def _load_password(self) -> str:
        """A generated password, kept across restarts so CLI commands and workers keep working.

        Also on loopback: without one, any local process could rewrite queued jobs.
        """
        path = self.password_file
        if path.exists():
            path.chmod(0o600)
            password = path.read_text(encoding="utf-8").strip()
            if password:
                return password
            path.unlink()
        password = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password + "\n")
        return password

    def _server_conf(self) -> str:
        redis_cfg = self.config.redis
        lines = [
            "# Written by HeroAgent at every start; edits here are overwritten.",
            f"bind {self.config.host}",
            f"port {redis_cfg.tcp_port}",
            "protected-mode yes",
            f'unixsocket "{self.socket_path}"',
            "unixsocketperm 700",
            f'dir "{self.base}"',
            f'pidfile "{self.pidfile}"',
            f'logfile "{self.logfile}"',
            "daemonize no",
            # AOF with a one-second fsync: a killed server loses nothing acknowledged
            # (FACTS.md); RDB snapshots would add forks for no extra safety.
            "appendonly yes",
            "appendfsync everysec",
            # The config path in the process title lets a later start recognise an orphan.
            'proc-title-template "{title} {listen-addr} {config-file}"',
            'save ""',
            # Valkey's defaults, said here because the client user's rules rely on them.
            "enable-debug-command no",
            "enable-module-command no",
        ]
        admin_hash = hashlib.sha256(self._admin_password.encode()).hexdigest()
        denied = " ".join(f"-{command}" for command in CLIENT_DENIED)
        lines += [
            # Clients (the engine's own work, the CLI, workers) log in as `default` with the
            # password; the admin user only stops the server.
            f"user default reset on >{self.password} ~* &* +@all {denied}",
            f"user {ADMIN_USER} reset on #{admin_hash} ~* &* +@all",
        ]
        return "\n".join(lines) + "\n"

    async def _launch(self, binary: Path) -> None:
        port = self.config.redis.tcp_port
        if port and port_in_use(self.config.host, port):
            raise ServiceStartError(
                f"port {port} on {self.config.host} is already in use; choose another with "
                "--redis-port or use that server with --redis-url"
            )
        self._proc = await spawn([str(binary), str(self.conf_path)], self.base, self.outfile)
        await self._wait_ready(self._proc, f"{binary.name} did not start")

    async def _wait_ready(self, proc: asyncio.subprocess.Process | None, what: str) -> None:
        """Poll PING until it answers, the child exits, or the deadline passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        last_error = "no answer"
        while loop.time() < deadline:
            if proc is not None and proc.returncode is not None:
                raise ServiceStartError(
                    f"{what}: exited with code {proc.returncode}: {self._tail()}"
                )
            client = self._probe_client()
            try:
                if await client.ping():
                    info = await client.info("server")
                    self.version = str(info.get("valkey_version") or info.get("redis_version", ""))
                    return
            except (RedisError, OSError) as exc:
                last_error = unreachable_reason(exc, self.config)
                if login_refused(exc):
                    if proc is not None:
                        await stop_process(proc, None, term_timeout=2.0)
                    raise ServiceStartError(f"{what}: {last_error}") from None
            finally:
                await client.aclose()
            await asyncio.sleep(0.02)
        if proc is not None:
            await stop_process(proc, None, term_timeout=2.0)
        raise ServiceStartError(f"{what}: no PONG within {START_TIMEOUT:.0f} s ({last_error})")

    def _tail(self) -> str:
        """The last meaningful line the server wrote, to quote in an error."""
        for path in (self.outfile, self.logfile):
            with contextlib.suppress(OSError):
                lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
                lines = [line for line in lines if line and not line.startswith("***")]
                if lines:
                    return lines[-1]
        return "no output"

    async def _supervise(self, binary: Path) -> None:
        """Restart the server whenever it dies unasked, with capped exponential backoff."""
        backoff = 0.1
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            self.emit_log(
                logging.ERROR, f"server pid {proc.pid} exited with code {code}; restarting"
            )
            self.set_state(ServiceState.RESTARTING, f"server exited with code {code}")
            while not self._stopping:
                try:
                    await clear_stale_pidfile(self.pidfile, self.conf_path)
                    await self._launch(binary)
                except ServiceStartError as exc:
                    self.emit_log(
                        logging.ERROR, f"restart failed: {exc}; next try in {backoff:.1f} s"
                    )
                    self.set_state(ServiceState.FAILED, str(exc))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RESTART_BACKOFF_MAX)
                    continue
                self.emit_log(logging.INFO, f"server restarted as pid {self.pid()}")
                self.set_state(ServiceState.RUNNING)
                backoff = 0.1
                break

    async def _stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        proc = self._proc
        if proc is None:
            return
        client = self._admin_client()

        async def shutdown() -> None:
            # SHUTDOWN fsyncs the AOF before exiting; the dropped connection is expected.
            with contextlib.suppress(RedisError, OSError):
                await client.shutdown()

        try:
            code = await stop_process(proc, shutdown)
        finally:
            if proc.returncode is None:
                # Cut short (a deadline, a second Ctrl-C): SIGTERM still has valkey fsync its
                # AOF and exit in milliseconds; the child must not outlive the engine.
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            await client.aclose()
        self.log.debug("server pid %d stopped with code %s", proc.pid, code)
        self._proc = None
