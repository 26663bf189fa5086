"""Salted scrypt hashes for WebDAV logins: `scrypt$n$r$p$salt$hash`, made and checked here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SCHEME = "scrypt"
# 2**14 rounds with r=8 costs about 16 MiB and tens of milliseconds: slow for a guesser,
# bearable for a login (verified logins are remembered, see core.webdav.auth).
DEFAULT_N = 1 << 14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# Bounds on parameters read from a config file, so a typo cannot eat the machine's memory.
MAX_N = 1 << 20
MAX_RP = 64


class PasswordHashError(ValueError):
    """A stored hash is not one this module makes; the message says how to make one."""


@dataclass(frozen=True)
class ScryptHash:
    """A parsed `scrypt$n$r$p$salt$hash` string."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def matches(self, password: str) -> bool:
        """True when `password` hashes to this digest (compared in constant time)."""
        candidate = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))
        return hmac.compare_digest(candidate, self.digest)

    def __str__(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        digest = base64.b64encode(self.digest).decode()
        return f"{SCHEME}${self.n}${self.r}${self.p}${salt}${digest}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # hashlib refuses work above `maxmem` (32 MiB by default); allow what n and r need.
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def hash_password(password: str) -> str:
    """A new salted hash of `password`, in the form the config's `webdav.users` holds."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, DEFAULT_N, DEFAULT_R, DEFAULT_P, HASH_BYTES)
    return str(ScryptHash(DEFAULT_N, DEFAULT_R, DEFAULT_P, salt, digest))


def parse_hash(text: str) -> ScryptHash:
    """Read a stored hash; raise PasswordHashError when it is not `scrypt$n$r$p$salt$hash`."""
    hint = "make one with `heroagent webdav hash-password`"
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashError(f"not a scrypt$n$r$p$salt$hash string; {hint}")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise PasswordHashError(f"malformed scrypt hash; {hint}") from None
    if n < 2 or n > MAX_N or n & (n - 1) or not 1 <= r <= MAX_RP or not 1 <= p <= MAX_RP:
        raise PasswordHashError(f"scrypt parameters out of range (n={n}, r={r}, p={p}); {hint}")
    if len(salt) < 8 or len(digest) < 16:
        raise PasswordHashError(f"scrypt salt or hash too short; {hint}")
    return ScryptHash(n, r, p, salt, digest)


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the stored hash."""
    return parse_hash(stored).matches(password)
