"""Engine stop: every service under a deadline, and the Redis child stopped whatever happens."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.config import Config
from core.engine import Engine, EngineStartError, ServiceSpec, default_services
from core.events.bus import EventBus
from core.redis_server.blocking import cancel_blocked
from core.services import Service, ServiceStartError, ServiceState
from tests.helpers import async_wait_for, pid_running


class StuckOnStop(Service):
    """A service whose stop never returns by itself (a wedged client, a lost peer)."""

    name = "stuck"
    stop_timeout = 0.3

    def __init__(self, bus: EventBus) -> None:
        super().__init__(bus)
        self.never = asyncio.Event()

    async def _start(self) -> None:
        pass

    async def _stop(self) -> None:
        await self.never.wait()


class FailsOnStop(Service):
    """A service whose stop raises."""

    name = "broken"

    async def _start(self) -> None:
        pass

    async def _stop(self) -> None:
        raise RuntimeError("stop went wrong")


class RefusesCredentials(Service):
    """A service whose preflight refuses the config, as a UI without a token beyond loopback."""

    name = "picky"

    def preflight(self) -> None:
        raise ServiceStartError("needs a token")

    async def _start(self) -> None:
        raise AssertionError("never started: its preflight refused")

    async def _stop(self) -> None:
        pass


async def loses_its_first_cancel(ended: asyncio.Event) -> None:
    """A loop that swallows one cancel, as Python 3.11's wait_for does to one that lands
    as the send it wraps completes (redis-py wraps every command in one), then runs on."""
    lost = False
    try:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost = True
    finally:
        ended.set()


class LosesACancel(Service):
    """A service whose background loop loses the first cancel its stop sends."""

    name = "loses"

    def __init__(self, bus: EventBus) -> None:
        super().__init__(bus)
        self.ended = asyncio.Event()

    async def _start(self) -> None:
        self.loop = self.supervise("loop", lambda: loses_its_first_cancel(self.ended))

    async def _stop(self) -> None:
        await self.stop_supervised()


def redis_and(*extra: ServiceSpec) -> list[ServiceSpec]:
    return [default_services()[0], *extra]


def spec(name: str, build: type[Service]) -> ServiceSpec:
    return ServiceSpec(name, lambda c: True, lambda e: build(e.bus))


async def test_a_stop_that_hangs_is_abandoned_at_its_deadline(engine_config: Config) -> None:
    engine = Engine(engine_config, services=redis_and(spec("stuck", StuckOnStop)))
    await engine.start()
    pid = engine.redis.pid()
    assert pid is not None
    started = time.monotonic()
    async with asyncio.timeout(15):
        await engine.stop()
    assert time.monotonic() - started < 10
    assert not pid_running(pid)
    assert engine.redis.state is ServiceState.STOPPED


async def test_a_stop_that_fails_does_not_keep_redis_running(engine_config: Config) -> None:
    engine = Engine(engine_config, services=redis_and(spec("broken", FailsOnStop)))
    await engine.start()
    pid = engine.redis.pid()
    assert pid is not None
    await engine.stop()
    assert not pid_running(pid)


async def test_a_cancelled_stop_still_stops_the_redis_child(engine_config: Config) -> None:
    stuck_spec = spec("stuck", StuckOnStop)
    engine = Engine(engine_config, services=redis_and(stuck_spec))
    await engine.start()
    stuck = engine.services["stuck"]
    stuck.stop_timeout = 60  # the cancel, not the deadline, ends this stop
    pid = engine.redis.pid()
    assert pid is not None
    stopping = asyncio.create_task(engine.stop())
    await async_wait_for(lambda: stuck.state is ServiceState.STOPPING, 5, "the stuck stop")
    stopping.cancel()  # what a second Ctrl-C does to the headless runner
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert not pid_running(pid)


async def test_a_loop_that_loses_a_cancel_is_cancelled_again_and_ends() -> None:
    service = LosesACancel(EventBus())
    await service.start()
    await asyncio.sleep(0)  # the loop runs up to its first wait
    await service.stop()
    # Not left running (it would crash on, on the closed client, as the relay's did).
    assert service.ended.is_set()
    assert service.loop.done()


async def test_cancel_blocked_cancels_a_loop_that_loses_its_cancel_again(
    engine: Engine,
) -> None:
    ended = asyncio.Event()
    loop = asyncio.create_task(loses_its_first_cancel(ended))
    await asyncio.sleep(0)
    client = engine.redis.loop_client()
    try:
        async with asyncio.timeout(10):
            await cancel_blocked([loop], client)
    finally:
        await client.aclose()
    assert ended.is_set()
    assert loop.cancelled()


async def test_credentials_are_checked_before_anything_binds(engine_config: Config) -> None:
    engine = Engine(engine_config, services=redis_and(spec("picky", RefusesCredentials)))
    with pytest.raises(EngineStartError) as info:
        await engine.start()
    assert str(info.value) == "picky: needs a token"
    # Redis comes first in start order, yet it never ran.
    assert engine.redis.state is ServiceState.STOPPED
    assert not engine.redis.pidfile.exists()


async def test_without_fail_fast_a_refused_service_is_failed_and_the_rest_run(
    engine_config: Config,
) -> None:
    services = redis_and(spec("picky", RefusesCredentials))
    async with Engine(engine_config, services=services, fail_fast=False) as engine:
        assert engine.redis.state is ServiceState.RUNNING
        picky = engine.services["picky"].status()
        assert picky.state is ServiceState.FAILED
        assert picky.last_error == "needs a token"
