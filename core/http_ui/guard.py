"""ASGI middleware that checks every request: Host, bearer token, same origin, body size."""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Methods that change state; a browser may send them cross-site (forms, fetch no-cors).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths anyone who reaches the port may load: the page must load to show its login form,
# probes must not need a secret, and the API's description holds none.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/openapi.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)


def _is_ip_literal(name: str) -> bool:
    # DNS rebinding needs a name the attacker's DNS answers for; an address cannot be rebound.
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def split_host(header: str) -> str:
    """The name part of a Host header (`[::1]:8090` → `[::1]`, `a:1` → `a`), lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


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
        import socket

        names = {bind_host.lower(), "localhost", *(h.lower() for h in extra_hosts)}
        if bind_host in ("0.0.0.0", "::", ""):
            # Bound everywhere: the machine's own names are what people type.
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        return cls(frozenset(names), token, max_body_bytes)

    def host_ok(self, header: str) -> bool:
        """True when the Host header names this server, not someone else's domain."""
        name = split_host(header)
        return bool(name) and (name in self.allowed_hosts or _is_ip_literal(name))

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
        if scope["method"] in UNSAFE_METHODS and not authorized and not _same_origin(headers):
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
            if size > limit:
                await _reply(send, 413, too_big, [(b"connection", b"close")])
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return replayed


def _same_origin(headers: dict[str, str]) -> bool:
    """False when a browser says the request comes from another site.

    Browsers send Origin on every cross-origin POST and Sec-Fetch-Site on every request;
    clients that are not browsers (curl, scripts) send neither and are let through,
    since a CSRF attack needs a victim's browser.
    """
    site = headers.get("sec-fetch-site", "")
    if site and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin", "")
    if not origin:
        return True
    if origin == "null":
        return False
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and rest.lower() == headers.get("host", "").lower()


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
