"""ASGI middleware that checks every request: Host, bearer token, same origin, body size."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.netguard import allowed_host_names, host_allowed, same_origin

# Re-exported: callers and tests have always found it here.
from core.netguard import split_host as split_host

# Methods that change state; a browser may send them cross-site (forms, fetch no-cors).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths anyone who reaches the port may load: the page must load to show its login form,
# probes must not need a secret, and the API's description holds none.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/openapi.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
# A body over the limit is read to its end and dropped before the 413, up to this much
# and this long: a server that closes with unread data makes the kernel answer with a
# reset, and the client then sees a broken connection instead of the 413. A bigger or
# slower one is cut off (its sender may see the reset: it was warned by the limit).
DRAIN_BYTES = 8 << 20
DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class GuardRules:
    """What the guard lets through."""

    allowed_hosts: frozenset[str]
    token: str
    max_body_bytes: int

    @classmethod
    def build(
        cls, bind_host: str, token: str, max_body_bytes: int, extra_hosts: Iterable[str] = ()
    ) -> GuardRules:
        """Rules for a server bound to `bind_host`."""
        return cls(allowed_host_names(bind_host, extra_hosts), token, max_body_bytes)

    def host_ok(self, header: str) -> bool:
        """True when the Host header names this server, not someone else's domain."""
        return host_allowed(header, self.allowed_hosts)

    def token_ok(self, authorization: str) -> bool:
        """True when the Authorization header carries the configured bearer token."""
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        return hmac.compare_digest(given.strip().encode(), self.token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def _reply(send: Send, status: int, message: str, extra: list[Any] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Refuses what the app must never see; everything else passes untouched."""

    def __init__(self, app: ASGIApp, rules: GuardRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        rules = self.rules
        host = headers.get("host", "")
        if not rules.host_ok(host):
            # 421: this server is not the one the name was meant for (DNS rebinding).
            await _reply(send, 421, f"host {host!r} is not served here")
            return
        path: str = scope["path"]
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        authorized = bool(rules.token) and rules.token_ok(headers.get("authorization", ""))
        if rules.token and not public and not authorized:
            await _reply(
                send, 401, "a bearer token is required", [(b"www-authenticate", b"Bearer")]
            )
            return
        if scope["method"] in UNSAFE_METHODS and not authorized and not same_origin(headers):
            await _reply(send, 403, "cross-site request refused")
            return
        if rules.max_body_bytes and scope["method"] in UNSAFE_METHODS:
            bounded = await self._bounded_body(headers, receive, send)
            if bounded is None:
                return
            receive = bounded
        await self.app(scope, receive, send)

    async def _bounded_body(
        self, headers: dict[str, str], receive: Receive, send: Send
    ) -> Receive | None:
        """Read the body up to the limit (bodies here are small), or answer 413 and None."""
        limit = self.rules.max_body_bytes
        too_big = f"request body is larger than {limit} bytes"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            # A client that asked `Expect: 100-continue` holds its body until told to
            # send it: nothing to drain. Asking for the body is what tells it.
            if "100-continue" not in headers.get("expect", "").lower():
                await _drain(receive, more=True, size=int(declared))
            await _reply(send, 413, too_big, [(b"connection", b"close")])
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            more = bool(message.get("more_body", False))
            if size > limit:
                await _drain(receive, more=more, size=size)
                await _reply(send, 413, too_big, [(b"connection", b"close")])
                return None
            chunks.append(chunk)
            if not more:
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return replayed


async def _drain(receive: Receive, *, more: bool, size: int) -> None:
    """Read and drop the rest of a refused body (`size`: declared, or seen so far)."""
    if not more or size > DRAIN_BYTES:
        return
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while dropped <= DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


def declare_bearer(app: FastAPI) -> None:
    """Describe the token in /openapi.json, on every route that needs it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        for path, operations in schema["paths"].items():
            if path not in PUBLIC_PATHS:
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
