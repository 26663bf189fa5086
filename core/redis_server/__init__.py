"""The Redis-protocol server: a supervised valkey/redis-server child, or an external URL."""

from core.redis_server.binary import ServerBinaryNotFound, find_cli_binary, find_server_binary
from core.redis_server.service import RedisService, redact_url, unreachable_reason

__all__ = [
    "RedisService",
    "ServerBinaryNotFound",
    "find_cli_binary",
    "find_server_binary",
    "redact_url",
    "unreachable_reason",
]
