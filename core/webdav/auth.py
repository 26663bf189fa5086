"""A WsgiDAV domain controller for hashed passwords (Basic auth only) and loopback anonymity."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from typing import Any

from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator

from core.webdav.passwords import ScryptHash, hash_password, parse_hash

REALM = "HeroAgent"
# The key under which the service hands this controller its settings in WsgiDAV's config.
CONFIG_KEY = "heroagent_auth"


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


class BasicAuthenticator(HTTPAuthenticator):  # type: ignore[misc]
    """WsgiDAV's authenticator, answering a malformed Basic header with 401, not 500."""

    def handle_basic_auth_request(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Check the header decodes to `name:password` before WsgiDAV splits it."""
        encoded = str(environ.get("HTTP_AUTHORIZATION", ""))[len("Basic ") :].strip()
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        if ":" not in decoded:
            return self.send_basic_auth_response(environ, start_response)
        return super().handle_basic_auth_request(environ, start_response)
