"""How the client library finds and reaches an engine: its config, and one Redis client."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from core.config import ENV_CONFIG_FILE, Config, RedisConfig, load_config
from core.events import EventBus
from core.redis_server import RedisService

CONNECT_TIMEOUT_SECONDS = 5.0


def client_config(
    url: str | None = None,
    *,
    config: Config | None = None,
    config_file: str | Path | None = None,
) -> Config:
    """The config a client uses: given, or by URL, or loaded the way `heroagent` loads it.

    With none of them, the default config file (or $HEROAGENT_CONFIG), then the
    HEROAGENT_* environment, as the command line reads them; a named file must exist.
    """
    if config is not None:
        if not url:
            return config
        # A URL given names the server: it wins over Sentinels the config may name.
        return replace(
            config, redis=replace(config.redis, url=url, sentinels=[], sentinel_master="")
        )
    if url:
        return Config(redis=RedisConfig(url=url))
    if config_file is None and os.environ.get(ENV_CONFIG_FILE):
        config_file = os.environ[ENV_CONFIG_FILE]
    path = Path(config_file) if config_file is not None else None
    return load_config(path, file_required=path is not None).config


def redis_for(config: Config, password: str | None = None) -> aioredis.Redis:
    """The asyncio Redis client the library talks to the engine through.

    The one place a client connection is built: through `RedisService`, as the engine
    and the CLI build theirs, so the socket path, the URL and the server's password
    (read from the data dir) are found the same way everywhere. Its client has no retry
    policy: a cancelled wait must end now, not after redis-py's backoff.
    """
    service = RedisService(config, EventBus())
    options: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if password is not None:
        if service.external:
            options["password"] = password
        else:
            service.password = password
    return service.loop_client(**options)
