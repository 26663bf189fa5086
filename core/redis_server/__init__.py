"""The Redis-protocol server: a supervised valkey/redis-server child, or an external URL."""

from core.redis_server.binary import ServerBinaryNotFound, find_server_binary
from core.redis_server.service import RedisService

__all__ = ["RedisService", "ServerBinaryNotFound", "find_server_binary"]
