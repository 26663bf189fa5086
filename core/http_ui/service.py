"""HttpUIService: the ASGI app served by uvicorn as a task in the engine's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from core.config import Config, is_loopback_host
from core.events.bus import EventBus, Subscription
from core.http_ui.access_log import AccessLog
from core.http_ui.guard import Guard, GuardRules
from core.http_ui.metrics import JobStats
from core.http_ui.protocol import header_deadline_protocol
from core.http_ui.sse import EventStreams
from core.services import Service, ServiceStartError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from core.api import EngineAPI

# Seconds uvicorn waits for open requests when stopping; SSE streams are ended before that.
GRACEFUL_SECONDS = 3

# Apps no running service serves, by whether they declare a token: a start takes one
# rather than build one (see `build_app`), a clean stop gives its app back.
_idle_apps: dict[bool, list[FastAPI]] = {}


class _HostedServer(uvicorn.Server):
    """uvicorn without its signal handlers: in someone else's loop, the host owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpUIService(Service):
    """Serves the JSON API, the event stream and the page on `ui.host:ui.port`."""

    name = "ui"

    def __init__(self, config: Config, bus: EventBus, api: EngineAPI) -> None:
        super().__init__(bus)
        self.config = config
        self.api = api
        self.host = config.ui_host
        self.port = config.ui.port
        self.stats = JobStats()
        self._server: _HostedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._streams: EventStreams | None = None
        self._app: FastAPI | None = None
        self._app_token = False

    def address(self) -> str:
        """The page's URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def detail(self) -> str:
        """Whether a token is asked for, and how many event streams are open."""
        auth = "token" if self.config.ui.token else "no token (loopback)"
        streams = self._streams.count if self._streams is not None else 0
        return f"{auth}, {streams} event stream(s)"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only
        # when the listening socket says TCP, and without it every keep-alive response waits
        # ~40 ms for a delayed ACK between its headers and its body.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ServiceStartError(
                    f"port {self.port} on {self.host} is already in use; "
                    "choose another with --ui-port or ui.port"
                ) from None
            raise ServiceStartError(f"cannot listen on {self.host}:{self.port}: {exc}") from None
        sock.setblocking(False)
        return sock

    def preflight(self) -> None:
        """Beyond loopback the API needs a token; checked before any service binds."""
        if not self.config.ui.token and not is_loopback_host(self.host):
            raise ServiceStartError(
                f"ui on {self.host} needs ui.token; refusing an open API beyond loopback"
            )

    async def _start(self) -> None:
        from core.http_ui.app import UIContext, build_app, serve_another

        self.preflight()
        token = self.config.ui.token
        if not is_loopback_host(self.host):
            self.emit_log(
                logging.WARNING,
                f"ui on {self.host} sends its token over plain HTTP; "
                "put a TLS proxy in front of it for use beyond a trusted network",
            )
        sock = self._bind()
        self.port = int(sock.getsockname()[1])
        api = self.api
        rules = GuardRules.build(
            self.host, token, self.config.ui.max_body_bytes, self.config.ui.allowed_hosts
        )
        self._streams = EventStreams(
            lambda size: api.subscribe(size, coalesce=True), self.config.ui.max_event_streams
        )
        self.stats = JobStats()
        self._stats_task = asyncio.create_task(self._count(api.subscribe(50_000)), name="ui-stats")
        context = UIContext(
            api, self._streams, self.stats, rules, self.config.ui.rpc_timeout, self.bus
        )
        try:
            self._app = serve_another(_idle_apps.get(bool(rules.token), []).pop(), context)
        except IndexError:
            self._app = build_app(context)
        self._app_token = bool(rules.token)
        app = AccessLog(Guard(self._app, rules), self.bus)
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            ws="none",
            http=header_deadline_protocol(self.config.ui.header_timeout),
        )
        self._server = _HostedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="ui-server")
        # serve() binds nothing (the socket is ours), so this waits only for its first steps.
        while not self._server.started:
            if self._task.done():
                await self._task
                raise ServiceStartError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)

    async def _count(self, subscription: Subscription) -> None:
        """Feed job events to the stats; a subscription of its own, apart from the SSE clients."""
        with subscription:
            while not subscription.closed:
                self.stats.observe(await subscription.get_batch())

    async def _stop(self) -> None:
        if self._streams is not None:
            self._streams.close_all()
        server, task = self._server, self._task
        self._server = self._task = None
        if server is not None and task is not None:
            server.should_exit = True
            await task
            # An app with a request still running (cancelled past the graceful deadline)
            # is not handed to another start: that request would see the other engine.
            if self._app is not None and not server.server_state.tasks:
                _idle_apps.setdefault(self._app_token, []).append(self._app)
            self._app = None
        if self._stats_task is not None:
            self._stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats_task
            self._stats_task = None
