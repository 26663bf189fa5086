"""Client: the blocking twin of AsyncClient, for scripts and code without an event loop."""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, Unpack

from core.config import Config
from heroagent.aio import AsyncClient, ClientOptions
from heroagent.errors import ClientError

T = TypeVar("T")
P = ParamSpec("P")
CLOSE_SECONDS = 10.0


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Client, P], T]:
    """The blocking form of an AsyncClient method, run on the client's own loop.

    One definition of each call, not a hand-kept twin: a new argument of AsyncClient
    reaches Client with its type and its docs.
    """

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._aio, *args, **kwargs))

    functools.update_wrapper(call, method)
    call.__qualname__ = f"Client.{method.__name__}"
    return call


class Client:
    """The engine's jobs from blocking code: the same calls as `AsyncClient`, not awaited.

    `Client()` reads the config the way `heroagent` does; `Client(url=..., password=...)`
    names a Redis server; `Client.from_config(config)` takes a loaded config. Use it as
    `with Client() as client:` or call `close()`. One client may be shared by threads.

    It runs an `AsyncClient` on a private event loop in a background thread rather than
    a second, blocking implementation: the request protocol, the wait on the events
    channel and the connection (heroagent.resp, an asyncio client) then exist once, and
    the two clients cannot drift apart. The thread
    is a daemon, so a client never closed does not keep the program alive; calling a
    `Client` from inside a running event loop is fine too, as that loop is not used.
    """

    def __init__(
        self, url: str | None = None, password: str | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        """The same arguments as `AsyncClient`'s."""
        self._aio = AsyncClient(url, password, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="heroagent-client", daemon=True
        )
        self._thread.start()
        self._closed = False
        # A client dropped without close() still stops its loop thread.
        self._finalizer = weakref.finalize(self, self._loop.call_soon_threadsafe, self._loop.stop)

    @classmethod
    def from_config(
        cls, config: Config, *, password: str | None = None, wait_seconds: float = 10.0
    ) -> Self:
        """A client for the engine this config describes."""
        return cls(password=password, config=config, wait_seconds=wait_seconds)

    @property
    def config(self) -> Config:
        """The effective config the client uses."""
        return self._aio.config

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            work.close()
            raise ClientError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C in the caller's thread: stop the request in the loop's thread too.
            future.cancel()
            raise

    def close(self) -> None:
        """Close the connections and stop the loop thread; calls after this fail."""
        if self._closed:
            return
        self._closed = True
        try:
            done = asyncio.run_coroutine_threadsafe(self._aio.aclose(), self._loop)
            done.result(CLOSE_SECONDS)
        finally:
            self._finalizer()
            self._thread.join(CLOSE_SECONDS)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Every call of AsyncClient, blocking: the same arguments, types and docs.
    submit = _blocking(AsyncClient.submit)
    submit_many = _blocking(AsyncClient.submit_many)
    submit_graph = _blocking(AsyncClient.submit_graph)
    get = _blocking(AsyncClient.get)
    get_many = _blocking(AsyncClient.get_many)
    history = _blocking(AsyncClient.history)
    jobs = _blocking(AsyncClient.jobs)
    dead = _blocking(AsyncClient.dead)
    requeue_many = _blocking(AsyncClient.requeue_many)
    purge = _blocking(AsyncClient.purge)
    wait = _blocking(AsyncClient.wait)
    wait_many = _blocking(AsyncClient.wait_many)
    result = _blocking(AsyncClient.result)
    cancel = _blocking(AsyncClient.cancel)
    requeue = _blocking(AsyncClient.requeue)
    pause = _blocking(AsyncClient.pause)
    resume = _blocking(AsyncClient.resume)
    limits = _blocking(AsyncClient.limits)
    set_limits = _blocking(AsyncClient.set_limits)
    schedules = _blocking(AsyncClient.schedules)
    add_schedule = _blocking(AsyncClient.add_schedule)
    pause_schedule = _blocking(AsyncClient.pause_schedule)
    resume_schedule = _blocking(AsyncClient.resume_schedule)
    remove_schedule = _blocking(AsyncClient.remove_schedule)
