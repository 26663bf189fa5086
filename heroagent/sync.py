"""Client: the blocking twin of AsyncClient, for scripts, threads and the command line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, Unpack

from core.channel import Command, Plan
from heroagent.connect import sync_redis_for
from heroagent.errors import ClientError
from heroagent.plans import (
    Calls,
    ClientBase,
    ClientOptions,
    Message,
    Sleep,
    Subscribe,
    Within,
    deadline_of,
    described,
)
from heroagent.resp_sync import SyncRespClient, SyncSubscription, run
from heroagent.wire import REPLY_TIMEOUT_SECONDS, DeadlinePassed

T = TypeVar("T")
P = ParamSpec("P")


def _blocking(
    method: Callable[Concatenate[Calls, P], Plan[T]],
) -> Callable[Concatenate[Client, P], T]:
    """The blocking form of a call (heroagent.plans): its plan run on a blocking socket.

    One definition of each call, not a hand-kept twin: a new argument reaches both
    clients with its type and its docs.
    """

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._calls, *args, **kwargs))

    described(call, method, "Client")
    return call


class Client(ClientBase):
    """The engine's jobs from blocking code: the same calls as `AsyncClient`, not awaited.

    `Client()` reads the config the way `heroagent` does; `Client(url=..., password=...)`
    names a Redis server; `Client.from_config(config)` takes a loaded config. Use it as
    `with Client() as client:` or call `close()`. One client may be shared by threads
    (each call takes a connection of its own), and it may be called from code that runs
    an event loop, which it does not use.

    Its calls are AsyncClient's (heroagent.plans) done on plain sockets
    (heroagent.resp_sync): no event loop, no thread, and asyncio is never imported, so
    a script or `heroagent submit` starts in the time the interpreter takes, not that
    plus asyncio's import.
    """

    def __init__(
        self, url: str | None = None, password: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        """The same arguments as `AsyncClient`'s."""
        super().__init__(url, password, **options)
        self._redis: SyncRespClient = sync_redis_for(self._calls.config, password)
        self._closed = False

    def _run(self, plan: Plan[T]) -> T:
        """Do each step of a call's plan; a `Within` limits the steps after it."""
        if self._closed:
            plan.close()
            raise ClientError("the client is closed")
        redis = self._redis
        subscriptions: list[SyncSubscription] = []
        deadline: float | None = None

        def perform(what: Any) -> Any:
            nonlocal deadline
            if isinstance(what, Within):
                deadline = deadline_of(what)
                return None
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlinePassed
            if isinstance(what, Command):
                timeout = what.block + REPLY_TIMEOUT_SECONDS
                return redis.execute(*what.args, timeout=timeout, deadline=deadline)
            if isinstance(what, Message):
                return what.subscription.message(deadline)
            if isinstance(what, Subscribe):
                subscription = redis.open_subscription(*what)
                subscriptions.append(subscription)
                return subscription
            if isinstance(what, Sleep):
                left = what.seconds if deadline is None else deadline - time.monotonic()
                time.sleep(max(0.0, min(what.seconds, left)))
                if left < what.seconds:
                    raise DeadlinePassed
                return None
            raise TypeError(f"a plan step Client does not know: {what!r}")

        try:
            return run(plan, perform)
        finally:
            for subscription in subscriptions:
                subscription.close()

    def close(self) -> None:
        """Close the connections; calls after this fail."""
        self._closed = True
        self._redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Every call of AsyncClient, blocking: the same arguments, types and docs.
    submit = _blocking(Calls.submit)
    submit_many = _blocking(Calls.submit_many)
    submit_graph = _blocking(Calls.submit_graph)
    get = _blocking(Calls.get)
    get_many = _blocking(Calls.get_many)
    history = _blocking(Calls.history)
    jobs = _blocking(Calls.jobs)
    dead = _blocking(Calls.dead)
    requeue_many = _blocking(Calls.requeue_many)
    purge = _blocking(Calls.purge)
    wait = _blocking(Calls.wait)
    wait_many = _blocking(Calls.wait_many)
    result = _blocking(Calls.result)
    cancel = _blocking(Calls.cancel)
    requeue = _blocking(Calls.requeue)
    pause = _blocking(Calls.pause)
    resume = _blocking(Calls.resume)
    limits = _blocking(Calls.limits)
    set_limits = _blocking(Calls.set_limits)
    schedules = _blocking(Calls.schedules)
    add_schedule = _blocking(Calls.add_schedule)
    pause_schedule = _blocking(Calls.pause_schedule)
    resume_schedule = _blocking(Calls.resume_schedule)
    remove_schedule = _blocking(Calls.remove_schedule)
