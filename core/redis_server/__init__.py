"""The Redis-protocol server: a supervised valkey/redis-server child, or an external URL.

Import from its modules (`core.redis_server.service`, `.binary`, `.address`, ...):
this package imports none of them, so the client library's `core.redis_server.address`
does not pay for redis-py (see docs/client.md).
"""
