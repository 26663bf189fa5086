"""AsyncClient: a running engine's jobs from asyncio code, over its Redis request channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Self, TypeVar, Unpack

from core.api import JobOptions, JobSpec, JobView, job_from_wire, spec_wire
from core.channel import MAX_BATCH, MAX_REQUEST_BYTES, Command, Plan, dumps
from heroagent.connect import redis_for
from heroagent.errors import ClientError
from heroagent.plans import (
    Calls,
    ClientBase,
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
# Submits made in one turn of the loop go as one request of at most MAX_BATCH of them
# and this many bytes (below the channel's limit, for the request's own fields); one
# bigger alone goes as its own `submit`, which says so when it is over the limit.
COALESCE_REQUEST_BYTES = MAX_REQUEST_BYTES - 4_096
COALESCE_BYTES = COALESCE_REQUEST_BYTES // 4
# A queued submit: its wire form, that form's encoded size, its caller's answer.
_Queued = tuple[dict[str, Any], int, "asyncio.Future[JobView]"]


def _awaited(
    method: Callable[Concatenate[Calls, P], Plan[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    """The asyncio form of a call (heroagent.plans): its plan run on the client's connection."""

    async def call(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(method(self._calls, *args, **kwargs))

    described(call, method, "AsyncClient")
    return call


class AsyncClient(ClientBase):
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
        super().__init__(url, password, **options)
        self._redis: RespClient | None = None
        # Submits made in one turn of the loop travel as one `submit_each` request.
        self._queued: list[_Queued] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._coalesce = True

    async def aclose(self) -> None:
        """Close the connections once the submits already made are answered.

        Their requests may be on their way (the engine may have made the jobs), so
        their callers get their jobs or errors, and nothing is left to reopen a
        connection after the close. The client may be used again (it reconnects).
        """
        if self._senders:
            await asyncio.gather(*self._senders, return_exceptions=True)
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

    async def submit(self, params: str, **options: Unpack[JobOptions]) -> JobView:
        item = spec_wire(JobSpec(params, **options))
        size = len(dumps(item))
        if not self._coalesce or size > COALESCE_BYTES:
            return job_from_wire(await self._run(self._calls.submit_item(item)))
        future: asyncio.Future[JobView] = asyncio.get_running_loop().create_future()
        if not self._queued:
            # Started next turn of the loop: every submit made until then goes with it.
            sender = asyncio.create_task(self._send_queued())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        self._queued.append((item, size, future))
        return await future

    described(submit, Calls.submit, "AsyncClient")

    async def _send_queued(self) -> None:
        """Send the submits queued since the last turn, as few requests as the limits allow."""
        # A caller cancelled before its request left sends nothing: no job is made for it.
        queued = [entry for entry in self._queued if not entry[2].done()]
        self._queued = []
        chunks: list[list[_Queued]] = [[]]
        room = COALESCE_REQUEST_BYTES
        for entry in queued:
            if len(chunks[-1]) >= MAX_BATCH or entry[1] > room:
                chunks.append([])
                room = COALESCE_REQUEST_BYTES
            chunks[-1].append(entry)
            room -= entry[1] + 1
        await asyncio.gather(*(self._send_chunk(chunk) for chunk in chunks))

    async def _send_chunk(self, chunk: list[_Queued]) -> None:
        """One request for these submits; each caller gets its own view or error."""
        items = [item for item, _, _ in chunk]
        try:
            try:
                outcomes = None
                if len(chunk) > 1 and self._coalesce:
                    outcomes = await self._run(self._calls.submit_each(items))
                    if outcomes is None:
                        # An engine from before `submit_each`: one request per submit now.
                        self._coalesce = False
                if outcomes is None:
                    outcomes = await self._submit_alone(items)
            except Exception as exc:  # the request as a whole failed: each caller hears why
                outcomes = [exc] * len(chunk)
            for (_, _, future), outcome in zip(chunk, outcomes, strict=True):
                if future.done():
                    continue  # its caller was cancelled (the job may have been made)
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                    continue
                try:
                    future.set_result(job_from_wire(outcome))
                except (TypeError, KeyError, ValueError) as exc:
                    future.set_exception(ClientError(f"the engine's reply is unreadable: {exc}"))
        finally:
            for _, _, future in chunk:
                future.cancel()  # only those not answered: this sender was cancelled

    async def _submit_alone(self, items: list[dict[str, Any]]) -> list[Any]:
        """One `submit` request per item, all at once: each item's job data or error."""
        if len(items) == 1:  # a lone call, the usual case: no gather and task around it
            try:
                return [await self._run(self._calls.submit_item(items[0]))]
            except Exception as exc:  # its caller's own error
                return [exc]
        return await asyncio.gather(
            *(self._run(self._calls.submit_item(item)) for item in items), return_exceptions=True
        )

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
