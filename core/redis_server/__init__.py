"""The Redis-protocol server: a supervised valkey/redis-server child, or an external URL.

The names below load on first use: `core.redis_server.address` and `.backoff` are
imported by the client library, which must not pay for redis-py (see docs/client.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_attributes

if TYPE_CHECKING:
    from core.redis_server.binary import (
        ServerBinaryNotFound,
        find_cli_binary,
        find_server_binary,
    )
    from core.redis_server.service import RedisService, redact_url, unreachable_reason

__getattr__ = lazy_attributes(
    __name__,
    {
        "core.redis_server.service": ("RedisService", "redact_url", "unreachable_reason"),
        "core.redis_server.binary": (
            "ServerBinaryNotFound",
            "find_cli_binary",
            "find_server_binary",
        ),
    },
)

__all__ = [
    "RedisService",
    "ServerBinaryNotFound",
    "find_cli_binary",
    "find_server_binary",
    "redact_url",
    "unreachable_reason",
]
