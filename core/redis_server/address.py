"""Where the engine's Redis server is and how to log in, found without loading redis-py.

The engine's `RedisService` and the client library's own small connection both read
these, so the socket path, the Sentinels and the managed server's password are found
one way everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.config import Config, split_host_port

# Unix socket paths longer than this do not fit in sockaddr_un on Linux (108 bytes with NUL).
MAX_SOCKET_PATH = 100
# Each Sentinel asked for the primary's address gets this long to answer; a dead or cut
# off one is skipped for the next. Short: every reconnect after a failover asks.
SENTINEL_TIMEOUT = 1.0


def is_external(config: Config) -> bool:
    """True when the engine uses a server it did not start (a URL, or Sentinels)."""
    return bool(config.redis.url or config.redis.sentinels)


def socket_path(config: Config) -> Path:
    """The managed server's unix socket."""
    configured = config.redis.unix_socket_path
    if configured:
        return Path(configured).expanduser().absolute()
    path = config.data_path / "run" / "valkey.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    # A deep data dir cannot hold a socket; use a per-data-dir folder in the temp dir.
    import hashlib
    import tempfile

    digest = hashlib.sha256(str(config.data_path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"heroagent-{os.getuid()}-{digest}" / "valkey.sock"


def password_file(config: Config) -> Path:
    """The file holding the managed server's client password (0600)."""
    return config.data_path / "redis" / "password"


def existing_password(config: Config) -> str | None:
    """The managed server's client password, when an engine has written one."""
    path = password_file(config)
    if is_external(config) or not path.exists():
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        # Not ours to read (another user's engine): the server will say NOAUTH.
        return None


def sentinel_addresses(config: Config) -> list[tuple[str, int]]:
    """The configured Sentinels as (host, port) pairs (the config checked them)."""
    pairs = []
    for address in config.redis.sentinels:
        host, port = split_host_port(address)
        if port is not None:
            pairs.append((host, port))
    return pairs
