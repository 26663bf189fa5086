"""The Redis-protocol server: a supervised valkey/redis-server child, or an external URL.

The names below load on first use: `core.redis_server.address` and `.backoff` are
imported by the client library, which must not pay for redis-py (see docs/client.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.redis_server.binary import (
        ServerBinaryNotFound,
        find_cli_binary,
        find_server_binary,
    )
    from core.redis_server.service import RedisService, redact_url, unreachable_reason

_WHERE = {
    "RedisService": "core.redis_server.service",
    "redact_url": "core.redis_server.service",
    "unreachable_reason": "core.redis_server.service",
    "ServerBinaryNotFound": "core.redis_server.binary",
    "find_cli_binary": "core.redis_server.binary",
    "find_server_binary": "core.redis_server.binary",
}

__all__ = [
    "RedisService",
    "ServerBinaryNotFound",
    "find_cli_binary",
    "find_server_binary",
    "redact_url",
    "unreachable_reason",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
