"""A WsgiDAV domain controller for hashed passwords (Basic auth only), with throttled logins."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from typing import Any

from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator

from core.webdav.passwords import ScryptHash, hash_password, parse_hash

REALM = "HeroAgent"
# The key under which the service hands this controller its settings in WsgiDAV's config.
CONFIG_KEY = "heroagent_auth"
# Failed logins one client address may make in LOGIN_WINDOW seconds before it gets 429.
LOGIN_FAILURES = 5
LOGIN_WINDOW = 60.0
# Addresses remembered at most, so a flood of sources cannot grow the table without end.
MAX_ADDRESSES = 4096


class HashedDomainController(BaseDomainController):  # type: ignore[misc]
    """Checks Basic-auth logins against salted scrypt hashes.

    Digest auth needs the plain password (or an unsalted MD5 of it) on the server, so it
    is off. A Basic client sends its password with every request; running scrypt each
    time would cost tens of milliseconds per request, so a login that verified once is
    remembered as an HMAC under a key that lives only in this process's memory.
    """

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        settings = config[CONFIG_KEY]
        self._hashes: dict[str, ScryptHash] = {
            name: parse_hash(stored) for name, stored in settings["users"].items()
        }
        self._anonymous: bool = settings["anonymous"]
        self._key = secrets.token_bytes(32)
        self._remembered: dict[str, bytes] = {}
        self._lock = threading.Lock()
        # Unknown users cost the same scrypt as known ones, so timing does not tell them apart.
        self._decoy = parse_hash(hash_password(secrets.token_urlsafe(16)))

    def __str__(self) -> str:
        return f"{type(self).__name__}({len(self._hashes)} users)"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        """One realm for the whole share."""
        return REALM

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        """Anonymous access only when the service allowed it (loopback, no users)."""
        return not self._anonymous

    def supports_http_digest_auth(self) -> bool:
        """Digest would need unsalted password material; only Basic is offered."""
        return False

    def basic_auth_user(
        self, realm: str, user_name: str, password: str, environ: dict[str, Any]
    ) -> bool:
        """True when the name and password match a configured login."""
        token = hmac.new(self._key, f"{user_name}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            remembered = self._remembered.get(user_name)
        if remembered is not None and hmac.compare_digest(remembered, token):
            return True
        stored = self._hashes.get(user_name)
        if stored is None:
            self._decoy.matches(password)
            return False
        if not stored.matches(password):
            return False
        with self._lock:
            self._remembered[user_name] = token
        return True


class LoginThrottle:
    """Failed logins per client address over a sliding window; thread-safe.

    scrypt makes each guess cost tens of milliseconds, which still allows thousands an
    hour from one client; this caps that at LOGIN_FAILURES a window.
    """

    def __init__(
        self,
        failures: int = LOGIN_FAILURES,
        window: float = LOGIN_WINDOW,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.failures = failures
        self.window = window
        self.max_addresses = max_addresses
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str, now: float | None = None) -> float:
        """Seconds until `address` may try again; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(address, now)
            if times is None or len(times) < self.failures:
                return 0.0
            # Once the oldest failure in the window expires, one more try is allowed.
            return times[-self.failures] + self.window - now

    def failed(self, address: str, now: float | None = None) -> None:
        """Count one failed login from `address`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(address, now)
            if times is None:
                if len(self._seen) >= self.max_addresses:
                    self._forget_some(now)
                times = self._seen[address] = deque(maxlen=self.failures)
            times.append(now)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._seen.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._seen[address]
            return None
        return times

    def _forget_some(self, now: float) -> None:
        # Drop whatever has expired; if that is nothing, the oldest entries (dicts keep
        # insertion order), which costs a guesser with many addresses a little memory only.
        for address in list(self._seen):
            self._recent(address, now)
        while len(self._seen) >= self.max_addresses:
            del self._seen[next(iter(self._seen))]


def _too_many(start_response: Any, seconds: float) -> list[bytes]:
    wait = max(1, math.ceil(seconds))
    body = f"too many failed logins from this address; retry in {wait} s\n".encode()
    start_response(
        "429 Too Many Requests",
        [
            ("Retry-After", str(wait)),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


class BasicAuthenticator(HTTPAuthenticator):  # type: ignore[misc]
    """WsgiDAV's Basic authenticator with throttled failures, and 401 for a malformed header.

    While an address is throttled every login from it gets 429, right or wrong: letting
    a right password through would let the guessing go on at full speed.
    """

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.throttle = LoginThrottle()

    def handle_basic_auth_request(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Check one Basic login, unless its address has failed too often lately."""
        address = str(environ.get("REMOTE_ADDR", ""))
        wait = self.throttle.retry_after(address)
        if wait > 0:
            return _too_many(start_response, wait)
        encoded = str(environ.get("HTTP_AUTHORIZATION", ""))[len("Basic ") :].strip()
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        name, colon, password = decoded.partition(":")
        realm = self.domain_controller.get_domain_realm(environ["PATH_INFO"], environ)
        if colon and self.domain_controller.basic_auth_user(realm, name, password, environ):
            environ["wsgidav.auth.realm"] = realm
            environ["wsgidav.auth.user_name"] = name
            return self.next_app(environ, start_response)
        self.throttle.failed(address)
        return self.send_basic_auth_response(environ, start_response)
