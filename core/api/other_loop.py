"""EngineAPI for a front end whose event loop is not the engine's: calls hop to the engine's."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from core.api.engine_api import EngineAPI
    from core.events.bus import Subscription

T = TypeVar("T")


async def on_loop(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on `loop` (another thread's) and await its outcome from this loop.

    Cancelling the awaiting task cancels `work` on its loop too.
    """
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))


class _OtherLoopAPI:
    """Every coroutine method of `api` runs on `engine_loop`; the rest are called here.

    The plain methods read a snapshot of the engine's state (its services, slots,
    schedules), or parse a text: work that takes a few microseconds, done where it is
    asked, rather than waiting for a turn of the engine's loop, which may be busy for
    tens of milliseconds under load.
    """

    def __init__(
        self,
        api: EngineAPI,
        engine_loop: asyncio.AbstractEventLoop,
        reader_loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._api = api
        self._engine_loop = engine_loop
        self._reader_loop = reader_loop

    def subscribe(self, maxsize: int = 10_000, *, coalesce: bool = False) -> Subscription:
        """Engine events, woken on the reader's loop (see `Subscription`)."""
        return self._api.subscribe(maxsize, coalesce=coalesce, loop=self._reader_loop)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._api, name)
        if not inspect.iscoroutinefunction(value):
            return value
        hop = _hop(self._engine_loop, value)
        # Kept: the next call finds it without this lookup.
        setattr(self, name, hop)
        return hop


def _hop(
    loop: asyncio.AbstractEventLoop, method: Callable[..., Coroutine[Any, Any, T]]
) -> Callable[..., Coroutine[Any, Any, T]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> T:
        return await on_loop(loop, method(*args, **kwargs))

    return call


def api_from_other_loop(api: EngineAPI, engine_loop: asyncio.AbstractEventLoop) -> EngineAPI:
    """`api` for callers on the running loop, while the engine runs on `engine_loop`."""
    return cast("EngineAPI", _OtherLoopAPI(api, engine_loop, asyncio.get_running_loop()))
