"""The caller's side of the request channel: its key names, limits, and `call`.

Kept apart from `core.remote` (the engine's side) so that the client library can speak
the protocol without loading the job manager, OurDB or the HeroScript parser. The key
names repeat those in `core.jobs.keys`; `tests/core/test_remote.py` keeps them equal.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

import orjson

from core.shapes import MAX_BATCH as MAX_BATCH

REQUESTS = "heroagent:requests"  # list: JSON requests from the CLI and the client library
EVENTS_CHANNEL = "heroagent:events"  # pub/sub: JSON job events for other processes
REPLY_TTL_SECONDS = 60
BLOCK_SECONDS = 2  # below redis-py's 5 s default socket timeout
MAX_REQUEST_BYTES = 1024 * 1024
MAX_LIST_LIMIT = 1_000
# Jobs one `purge` request deletes at most: a long purge goes as several requests, so
# it holds one of the engine's request slots (and the history's purge lock) briefly.
MAX_PURGE_PER_REQUEST = 5_000


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


async def call(
    redis: ListCommands, op: str, args: dict[str, Any], *, wait_seconds: float = 10.0
) -> Any:
    """Send one request to the engine and wait for its answer.

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
    await redis.rpush(REQUESTS, payload)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    taken = False
    while True:
        left = deadline - loop.time()
        if left <= 0:
            if not taken and await redis.lrem(REQUESTS, 1, payload.decode()):
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
            deadline = loop.time() + wait_seconds
            continue
        item = await redis.blpop([reply_key(token)], timeout=min(BLOCK_SECONDS, max(left, 0.1)))
        if item is not None:
            reply = loads(item[1])
            if "error" in reply:
                raise RequestError(reply["error"], reply.get("kind", "refused"), reply)
            return reply["ok"]
