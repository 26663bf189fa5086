"""WebDAVService: WsgiDAV served by cheroot on its own thread, started and stopped by the engine."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging

from core.config import Config, is_loopback_host
from core.events import WebDAVRequest
from core.events.bus import EventBus
from core.netguard import allowed_host_names
from core.services import Service, ServiceStartError
from core.webdav.app import build_app
from core.webdav.guard import RequestRecord
from core.webdav.passwords import PasswordHashError, parse_hash
from core.webdav.props import SqlitePropertyManager
from core.webdav.server import Server

# No version in the Server header: it tells an attacker which CVEs to try, and nobody else.
SERVER_NAME = "HeroAgent"
MAX_HEADER_BYTES = 64 * 1024
# Seconds a connection may sit silent (mid-upload or idle keep-alive) before cheroot drops it.
SOCKET_TIMEOUT = 30
# The whole stop, stalled uploads included: the engine's shutdown must not wait on clients.
STOP_SECONDS = 2.0
THREADS = 16


class WebDAVService(Service):
    """Serves `webdav.root` over WebDAV on `webdav.host:webdav.port`."""

    name = "webdav"

    def __init__(self, config: Config, bus: EventBus) -> None:
        super().__init__(bus)
        self.config = config
        self.root = config.webdav_root
        self.host = config.webdav_host
        self.port = config.webdav.port
        self.readonly = config.webdav.readonly
        self.anonymous = False
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._props: SqlitePropertyManager | None = None

    @property
    def server(self) -> Server | None:
        """The running HTTP server, or None when stopped."""
        return self._server

    def address(self) -> str:
        """The share's URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def detail(self) -> str:
        """Root, mode and who may log in."""
        mode = "read-only" if self.readonly else "read-write"
        users = self.config.webdav.users
        who = "anonymous" if self.anonymous else f"{len(users)} user(s)"
        return f"{self.root} ({mode}, {who})"

    def preflight(self) -> None:
        """The logins and their hashes, checked before any service binds."""
        self._check_access()

    def _check_access(self) -> tuple[dict[str, str], bool]:
        """The users and whether anonymous access is on; refuses unsafe combinations."""
        users = dict(self.config.webdav.users)
        for name, stored in users.items():
            try:
                parse_hash(stored)
            except PasswordHashError as exc:
                raise ServiceStartError(f"webdav.users.{name}: {exc}") from None
        if users:
            return users, False
        if not is_loopback_host(self.host):
            raise ServiceStartError(
                f"webdav on {self.host} needs webdav.users; "
                "refusing anonymous access beyond loopback"
            )
        if not self.config.webdav.anonymous:
            raise ServiceStartError(
                "webdav.anonymous is false and webdav.users is empty, so nobody could log in; "
                "add a user (heroagent webdav hash-password) or allow anonymous access"
            )
        return users, True

    async def _start(self) -> None:
        users, self.anonymous = self._check_access()
        if not is_loopback_host(self.host):
            self.emit_log(
                logging.WARNING,
                f"webdav on {self.host} uses Basic auth over plain HTTP; "
                "put a TLS proxy in front of it for use beyond a trusted network",
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServiceStartError(f"webdav.root {self.root}: {exc.strerror}") from None
        self._loop = asyncio.get_running_loop()
        # Outside the root, so the property store is never served or overwritten by a PUT.
        props_path = self.config.data_path / "webdav-state" / "props.db"
        self._props = await asyncio.to_thread(SqlitePropertyManager, props_path)
        app = build_app(
            self.root,
            readonly=self.readonly,
            users=users,
            anonymous=self.anonymous,
            on_finish=self._on_request,
            allowed_hosts=allowed_host_names(self.host, self.config.webdav.allowed_hosts),
            max_body_bytes=self.config.webdav.max_body_bytes,
            property_manager=self._props,
        )
        server = Server(
            (self.host, self.port),
            app,
            numthreads=THREADS,
            server_name=SERVER_NAME,
            socket_timeout=SOCKET_TIMEOUT,
            header_timeout=self.config.webdav.header_timeout,
            stop_seconds=STOP_SECONDS,
        )
        server.max_request_header_size = MAX_HEADER_BYTES
        server.max_request_body_size = self.config.webdav.max_body_bytes
        try:
            await self._listen(server)
        except BaseException:
            self._props.close()
            self._props = None
            raise
        self.port = int(server.bind_addr[1])
        self._server = server
        server.start_serving()

    async def _listen(self, server: Server) -> None:
        try:
            # prepare() binds the socket; run it off the loop, the bind can take a moment.
            await asyncio.to_thread(server.prepare)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE or "already in use" in str(exc).lower():
                raise ServiceStartError(
                    f"port {self.port} on {self.host} is already in use; "
                    "choose another with --webdav-port or webdav.port"
                ) from None
            raise ServiceStartError(f"cannot listen on {self.host}:{self.port}: {exc}") from None

    async def _stop(self) -> None:
        server, self._server = self._server, None
        left = []
        if server is not None:
            # Bounded by STOP_SECONDS inside; the thread only keeps the loop free meanwhile.
            left = await asyncio.to_thread(server.stop, STOP_SECONDS)
        if left:
            # A thread stuck in application code may still use the property store:
            # leave it open rather than pull it from under the thread (they are daemons).
            names = ", ".join(t.name for t in left)
            self.emit_log(logging.WARNING, f"webdav stopped with threads still busy: {names}")
        elif self._props is not None:
            self._props.close()
        self._props = None

    def _on_request(self, record: RequestRecord) -> None:
        """Called on a cheroot thread: hand the event to the loop (the bus is not thread-safe)."""
        event = WebDAVRequest(
            method=record.method,
            path=record.path,
            status=record.status,
            bytes=record.bytes,
            ms=round(record.ms, 3),
        )
        self.log.debug(event.message)
        loop = self._loop
        if loop is None:
            return
        # RuntimeError: the loop has closed, the engine is gone and nobody is listening.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.bus.publish, event)
