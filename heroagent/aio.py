"""AsyncClient: a running engine's jobs from asyncio code, over its Redis request channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, Unpack

from core.channel import Command, Plan
from core.config import Config
from heroagent.connect import redis_for
from heroagent.plans import (
    Calls,
    ClientOptions,
    Message,
    PurgeOptions,
    Sleep,
    Subscribe,
    Within,
    deadline_of,
    described,
    unreachable,
)
from heroagent.resp import RespClient, Subscription, run
from heroagent.wire import REPLY_TIMEOUT_SECONDS, DeadlinePassed

__all__ = ["AsyncClient", "ClientOptions", "PurgeOptions"]

T = TypeVar("T")
P = ParamSpec("P")


def _awaited(
    method: Callable[Concatenate[Calls, P], Plan[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    """The asyncio form of a call (heroagent.plans): its plan run on the client's connection."""

    async def call(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(method(self._calls, *args, **kwargs))

    described(call, method, "AsyncClient")
    return call


class AsyncClient:
    """The engine's jobs from asyncio code: submit, wait on events, read, change.

    `AsyncClient()` reads the config the way `heroagent` does (the default file or
    $HEROAGENT_CONFIG, then HEROAGENT_* variables); `AsyncClient(url=..., password=...)`
    names a Redis server; `AsyncClient.from_config(config)` takes a loaded config.
    Nothing connects until the first call; use `async with AsyncClient() as client:` or
    `await client.aclose()`. Calls may run concurrently on one client.

    Errors are typed: the engine's refusals are `JobRefused` (and its `JobNotFound`,
    `JobEnded`, `JobNotEnded`) with line, column and batch index, a stopped jobs service
    is `EngineUnavailable`, no engine at all is `EngineUnreachable`.
    """

    def __init__(
        self, url: str | None = None, password: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        self._calls = Calls(url, password, **options)
        self._redis: RespClient | None = None

    @classmethod
    def from_config(
        cls, config: Config, *, password: str | None = None, wait_seconds: float = 10.0
    ) -> Self:
        """A client for the engine this config describes."""
        return cls(password=password, config=config, wait_seconds=wait_seconds)

    @property
    def config(self) -> Config:
        """The effective config the client uses."""
        return self._calls.config

    @property
    def wait_seconds(self) -> float:
        """How long a request waits for an engine to take it (and then to answer it)."""
        return self._calls.wait_seconds

    async def aclose(self) -> None:
        """Close the connections; the client may be used again (it reconnects)."""
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _client(self) -> RespClient:
        # Made on first use, in the loop that uses it: its connections are bound to one.
        if self._redis is None:
            self._redis = redis_for(self._calls.config, self._calls.password)
        return self._redis

    async def _run(self, plan: Plan[T]) -> T:
        """Await each step of a call's plan; a `Within` limits the steps after it."""
        try:
            redis = self._client()
        except OSError as exc:  # a URL that names no server
            plan.close()
            raise unreachable(exc) from None
        subscriptions: list[Subscription] = []
        deadline: float | None = None

        async def step(what: Any) -> Any:
            if isinstance(what, Command):
                return await redis.execute(*what.args, timeout=what.block + REPLY_TIMEOUT_SECONDS)
            if isinstance(what, Message):
                return await what.subscription.message()
            if isinstance(what, Subscribe):
                subscription = await redis.open_subscription(*what)
                subscriptions.append(subscription)
                return subscription
            if isinstance(what, Sleep):
                return await asyncio.sleep(what.seconds)
            raise TypeError(f"a plan step AsyncClient does not know: {what!r}")

        async def perform(what: Any) -> Any:
            nonlocal deadline
            if isinstance(what, Within):
                deadline = deadline_of(what)
                return None
            limit = asyncio.timeout(None if deadline is None else deadline - time.monotonic())
            try:
                async with limit:
                    return await step(what)
            except TimeoutError:
                if limit.expired():
                    raise DeadlinePassed from None
                raise

        try:
            return await run(plan, perform)
        finally:
            for subscription in subscriptions:
                subscription.close()

    submit = _awaited(Calls.submit)
    submit_many = _awaited(Calls.submit_many)
    submit_graph = _awaited(Calls.submit_graph)
    get = _awaited(Calls.get)
    get_many = _awaited(Calls.get_many)
    history = _awaited(Calls.history)
    jobs = _awaited(Calls.jobs)
    dead = _awaited(Calls.dead)
    requeue_many = _awaited(Calls.requeue_many)
    purge = _awaited(Calls.purge)
    wait = _awaited(Calls.wait)
    wait_many = _awaited(Calls.wait_many)
    result = _awaited(Calls.result)
    cancel = _awaited(Calls.cancel)
    requeue = _awaited(Calls.requeue)
    pause = _awaited(Calls.pause)
    resume = _awaited(Calls.resume)
    limits = _awaited(Calls.limits)
    set_limits = _awaited(Calls.set_limits)
    schedules = _awaited(Calls.schedules)
    add_schedule = _awaited(Calls.add_schedule)
    pause_schedule = _awaited(Calls.pause_schedule)
    resume_schedule = _awaited(Calls.resume_schedule)
    remove_schedule = _awaited(Calls.remove_schedule)
