"""How the client library finds and reaches an engine: its config, and its Redis clients."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import ENV_CONFIG_FILE, Config, RedisConfig, load_config
from heroagent.wire import find_target

if TYPE_CHECKING:
    from heroagent.resp import RespClient
    from heroagent.resp_sync import SyncRespClient


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


def redis_for(config: Config, password: str | None = None) -> RespClient:
    """The asyncio Redis client AsyncClient talks to the engine through.

    Its own small client (heroagent.resp), not redis-py, which takes longer to import
    than a CLI command may take to run; it finds the server as `RedisService` does (the
    same socket path, URL, Sentinels and data-dir password, from core.redis_server.address).
    `password` replaces the config's (or the data dir's). It does not retry: a cancelled
    wait must end now, and the wait's own loop reconnects after a failover.
    """
    from heroagent.resp import RespClient, target_finder  # asyncio loads only for AsyncClient

    return RespClient(target_finder(config, password))


def sync_redis_for(config: Config, password: str | None = None) -> SyncRespClient:
    """The blocking twin of `redis_for`, for Client: the same server, found the same way.

    The config is read for each new connection, so a bad URL is the first call's
    EngineUnreachable (as in AsyncClient), not an error of `Client()`.
    """
    from heroagent.resp_sync import SyncRespClient

    return SyncRespClient(lambda: find_target(config, password)())
