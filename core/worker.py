"""Headless watchdog for `heroagent worker`: runs jobs from a shared Redis, owns no history."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.config import Config
from core.events.bus import EventBus
from core.headless import StopSignals, configure_logging
from core.jobs.promoter import start_promoter, stop_promoter
from core.redis_server.service import RedisService, unreachable_reason
from core.watchdog import WatchDog
from core.watchdog.service import build_processors, build_registry, watchdog_settings

log = logging.getLogger("core.worker")


def _connect(config: Config) -> tuple[aioredis.Redis, str] | None:
    """A client for the shared server, and where it is (for people), or None if unknown.

    `redis.url` names it (with the password, for an engine on another machine), or
    `redis.sentinels` do; without either, the data dir of an engine on this machine does:
    its socket and password file.
    """
    service = RedisService(config, EventBus())
    if not service.external and service.password is None:
        return None
    return service.loop_client(), service.url()


async def work(config: Config) -> int:
    """Run a watchdog against the shared server until SIGINT or SIGTERM; return the exit code."""
    connected = _connect(config)
    if connected is None:
        log.error(
            "heroagent worker needs the shared server: pass --redis-url (with the password "
            "of an engine elsewhere), set redis.sentinels and redis.sentinel_master, or "
            "pass the --data-dir of an engine on this machine"
        )
        return 2
    redis, where = connected
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        log.error("cannot reach %s: %s", where, unreachable_reason(exc, config))
        await redis.aclose()
        return 1
    registry = await asyncio.to_thread(build_registry, config)
    settings = watchdog_settings(config)
    if settings.worker_count == 0:
        log.error("jobs.worker_count is 0: this worker would run nothing")
        await redis.aclose()
        return 2
    dog = WatchDog(redis, build_processors(config, registry), settings)
    signals = StopSignals()
    try:
        with signals:
            await _run_until_stopped(dog, signals, config.jobs.drain_seconds)
    except asyncio.CancelledError:
        if not signals.absorb():
            raise
        log.error("stopped at once")
        return 1
    return 1 if signals.cuts else 0


async def _run_until_stopped(dog: WatchDog, signals: StopSignals, drain_seconds: float) -> None:
    """Run the watchdog until a signal; drain it, then hand back what still runs."""
    redis = dog.redis
    await dog.start()
    # A system with no engine running still queues its delayed and retried jobs.
    promoter, promoting = await start_promoter(redis)
    log.info("worker %s ready", dog.worker_id)
    try:
        await signals.requested.wait()
        log.info("stopping; a second Ctrl-C or SIGTERM stops at once")
        await signals.drain(dog.drain(drain_seconds))
    finally:
        await stop_promoter(promoter, promoting)
        await dog.stop()
        await redis.aclose()


def run(config: Config) -> int:
    """Blocking entry point for the CLI."""
    configure_logging(config.log_level)
    return asyncio.run(work(config))
