"""The caller's side of the request channel: its key names, limits, and `call`.

Kept apart from `core.remote` (the engine's side) so that the client library can speak
the protocol without loading the job manager, OurDB or the HeroScript parser. The key
names repeat those in `core.jobs.keys`; `tests/core/test_remote.py` keeps them equal.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import orjson

from core.events.shapes import MAX_BATCH as MAX_BATCH

REQUESTS = "heroagent:requests"  # list: JSON requests from the CLI and the client library
EVENTS_CHANNEL = "heroagent:events"  # pub/sub: JSON job events for other processes
REPLY_TTL_SECONDS = 60
BLOCK_SECONDS = 2  # below redis-py's 5 s default socket timeout
MAX_REQUEST_BYTES = 1024 * 1024
MAX_LIST_LIMIT = 1_000
# Jobs one `purge` request deletes at most: a long purge goes as several requests, so
# it holds one of the engine's request slots (and the history's purge lock) briefly.
MAX_PURGE_PER_REQUEST = 5_000
T = TypeVar("T")


class ListCommands(Protocol):
    """The three list commands `call` sends: redis-py's client has them, so has heroagent's."""

    def rpush(self, name: str, /, *values: bytes) -> Awaitable[Any]: ...

    def lrem(self, name: str, count: int, value: str, /) -> Awaitable[Any]: ...

    def blpop(self, keys: Sequence[str], /, timeout: float) -> Awaitable[Any]: ...


def reply_key(token: str) -> str:
    """Where the engine puts the answer to one request."""
    return f"heroagent:reply:{token}"


class RequestError(RuntimeError):
    """The engine refused a request, or none answered; the message is for people.

    `kind` names the refusal (the engine API's error kinds, or `no_engine` when nobody
    took the request, `no_reply` when the engine took it and did not answer in time);
    `reply` is the whole error reply, with `line`, `col`, `index` and `problems` when the
    engine said where.
    """

    def __init__(
        self, message: str, kind: str = "refused", reply: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.reply = reply or {}


def dumps(data: Any) -> bytes:
    """JSON of a request or reply: orjson, a batch of 1,000 jobs in a fraction of the time.

    What orjson refuses (a lone surrogate, an integer past 64 bits) goes through the
    stdlib instead, so the other side refuses it with its own clear error, as before.
    """
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data).encode()


def loads(raw: bytes | str) -> Any:
    """A request or reply back from JSON; raises ValueError when it is not JSON.

    The stdlib reads what orjson refuses but an older caller's stdlib JSON may hold
    (`Infinity`, an escaped lone surrogate), so such a field is refused by its checks.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


class Command(NamedTuple):
    """One Redis command a plan sends; `block` is how long the server may hold it (BLPOP)."""

    args: tuple[str | bytes | int | float, ...]
    block: float = 0.0


# A plan: the commands of one exchange and what to make of their replies, with no I/O of
# its own. The asyncio client, the blocking client and `call` each run it on their own
# connection, so the protocol exists once.
Plan = Generator[Any, Any, T]


class Stepper(Generic[T]):
    """Where a run of a plan is: the step to do next, or once `done` the plan's result.

    The clients' runners give each step's outcome back with `give` (or `fail` with the
    exception it raised, which the plan may handle); an exception the plan raises itself
    goes to the runner's caller.
    """

    def __init__(self, plan: Plan[T]) -> None:
        self._plan = plan
        self.done = False
        self.result: T
        self.step: Any = None
        self.give(None)

    def give(self, value: Any) -> None:
        """The outcome of the last step; the next one becomes `step`."""
        self._advance(self._plan.send, value)

    def fail(self, error: Exception) -> None:
        """The last step raised `error`: it is raised inside the plan."""
        self._advance(self._plan.throw, error)

    def settle(self, perform: Callable[[Any], Any]) -> None:
        """Do the step with `perform` (a blocking call) and give its outcome back."""
        try:
            value = perform(self.step)
        except Exception as exc:  # the plan's to handle; it re-raises what it does not
            self.fail(exc)
        else:
            self.give(value)

    def _advance(self, resume: Callable[[Any], Any], arg: Any) -> None:
        try:
            self.step = resume(arg)
        except StopIteration as stop:
            self.done, self.result = True, stop.value


def request(op: str, args: dict[str, Any], *, wait_seconds: float = 10.0) -> Plan[Any]:
    """Send one request to the engine and wait for its answer (a plan of `Command`s).

    When nobody takes the request within `wait_seconds`, it is taken back (so it does
    not run later) and `no_engine` is raised. When the engine took it but is slow to
    answer (a big batch on a busy machine), the wait goes on for as long again before
    `no_reply` says the outcome is unknown.
    """
    token = os.urandom(12).hex()  # what secrets.token_hex does, without its import
    # The token goes first: the engine answers even a request too big to parse.
    payload = dumps({"token": token, "op": op, "args": args})
    if len(payload) > MAX_REQUEST_BYTES:
        raise RequestError(
            f"request of {len(payload)} bytes; the limit is {MAX_REQUEST_BYTES} "
            "(send fewer or smaller jobs at once)"
        )
    yield Command(("RPUSH", REQUESTS, payload))
    deadline = time.monotonic() + wait_seconds
    taken = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            if not taken and (yield Command(("LREM", REQUESTS, 1, payload))):
                raise RequestError(
                    f"no engine answered within {wait_seconds:g} s; is `heroagent --serve` "
                    "(or the app) running with this config?",
                    kind="no_engine",
                )
            if taken:
                raise RequestError(
                    f"the engine took the {op} request but did not answer within "
                    f"{2 * wait_seconds:g} s; its outcome is unknown",
                    kind="no_reply",
                )
            taken = True
            deadline = time.monotonic() + wait_seconds
            continue
        block = min(BLOCK_SECONDS, max(left, 0.1))
        item = yield Command(("BLPOP", reply_key(token), block), block)
        if item is not None:
            reply = loads(item[1])
            if "error" in reply:
                raise RequestError(reply["error"], reply.get("kind", "refused"), reply)
            return reply["ok"]


async def call(
    redis: ListCommands, op: str, args: dict[str, Any], *, wait_seconds: float = 10.0
) -> Any:
    """`request` over an asyncio client with list commands (redis-py's, for one)."""
    steps = Stepper(request(op, args, wait_seconds=wait_seconds))
    while not steps.done:
        name, key, *rest = steps.step.args
        if name == "RPUSH":
            steps.give(await redis.rpush(str(key), *(v for v in rest if isinstance(v, bytes))))
        elif name == "LREM":
            payload = rest[1]
            assert isinstance(payload, bytes)  # the request's own JSON
            steps.give(await redis.lrem(str(key), int(rest[0]), payload.decode()))
        else:
            steps.give(await redis.blpop([str(key)], timeout=float(rest[0])))
    return steps.result
