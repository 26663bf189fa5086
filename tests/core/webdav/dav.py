"""A WebDAV service on its own loop thread, and a raw HTTP client that sends paths as given."""

from __future__ import annotations

import asyncio
import base64
import http.client
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import Config, load_config
from core.events import Event
from core.events.bus import EventBus
from core.webdav.passwords import hash_password
from core.webdav.service import WebDAVService
from tests.helpers import free_port

USER = "alice"
PASSWORD = "wonderland"
_HASHES: dict[str, str] = {}


def password_hash(password: str = PASSWORD) -> str:
    """One scrypt hash per password per test session (each costs ~50 ms)."""
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


def dav_config(
    base: Path, flags: Mapping[str, Any] | None = None, *, users: bool = False
) -> Config:
    """A config serving `base/root` on a free port."""
    values: dict[str, Any] = {
        "data_dir": str(base / "data"),
        "webdav.root": str(base / "root"),
        "webdav.port": free_port(),
    }
    if users:
        values["webdav.users"] = {USER: password_hash()}
    values.update(flags or {})
    return load_config(base / "absent.toml", env={}, flags=values).config


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class RunningDav:
    """A started WebDAVService on a private event loop thread, plus the events it published."""

    config: Config
    bus: EventBus = field(default_factory=EventBus)
    events: list[Event] = field(default_factory=list)
    auth: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self.service = WebDAVService(self.config, self.bus)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self._start())
        self.root: Path = self.config.webdav_root
        self.port: int = self.service.port

    async def _start(self) -> None:
        subscription = self.bus.subscribe()
        self._collector = asyncio.ensure_future(self._collect(subscription))
        await self.service.start()

    async def _collect(self, subscription: Any) -> None:
        async for event in subscription:
            self.events.append(event)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.call(self.service.stop())
            self._collector.cancel()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        auth: tuple[str, str] | bool | None = True,
    ) -> Response:
        """Send one request with the path exactly as given (no client-side normalising)."""
        credentials = self.auth if auth is True else (auth or None)
        all_headers = dict(headers or {})
        if credentials:
            token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
            all_headers["Authorization"] = f"Basic {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            # A Host given in `headers` replaces the one http.client would send.
            skip_host = any(name.lower() == "host" for name in all_headers)
            conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
            if body is not None:
                all_headers.setdefault("Content-Length", str(len(body)))
            for name, value in all_headers.items():
                conn.putheader(name, value)
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            conn.close()
