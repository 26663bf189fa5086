"""The request channel over Redis: how the client library and the CLI reach an engine.

`RequestServer` is a front end of the engine (it answers through `EngineAPI`); `call`
(in `core.channel`, re-exported here) is the caller's side, used by `heroagent.Client`.
Requests and replies are JSON; jobs travel in their one wire form (`core.api.job_wire`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.api import (
    EngineAPI,
    EngineError,
    JobFilter,
    JobRefused,
    JobSpec,
    JobView,
    ScheduleOptions,
    job_wire,
    limits_wire,
    schedule_wire,
    spec_from_wire,
    spec_with_params,
)
from core.channel import (
    BLOCK_SECONDS,
    MAX_LIST_LIMIT,
    MAX_PURGE_PER_REQUEST,
    MAX_REQUEST_BYTES,
    REPLY_TTL_SECONDS,
    REQUESTS,
    RequestError,
    call,
    dumps,
    loads,
    reply_key,
)
from core.redis_server.backoff import Backoff
from core.redis_server.blocking import cancel_blocked
from core.services import Service

__all__ = ["MAX_REQUEST_BYTES", "RequestError", "RequestServer", "call"]

log = logging.getLogger(__name__)

# Requests answered at once; the serve loop takes no more from the list until one ends.
MAX_IN_FLIGHT = 32
# How long stopping waits for the requests taken to be answered (a unique submit may
# wait up to CLAIM_WAIT_SECONDS, 10 s, for another submit's claim).
STOP_WAIT_SECONDS = 15.0
# KEYS: each reply's key; ARGV: their time to live, then each reply. One call for every
# reply ready, atomic like the MULTI it replaces: no reply list is left without its TTL.
_PUSH_REPLIES = """
for i = 1, #KEYS do
  redis.call('RPUSH', KEYS[i], ARGV[i + 1])
  redis.call('EXPIRE', KEYS[i], ARGV[1])
end
"""

_TOKEN = re.compile(r"[0-9A-Za-z]{1,64}")
_TOKEN_AT_START = re.compile(r'\{"token": ?"([0-9A-Za-z]{1,64})"')


def _job_id(args: dict[str, Any]) -> int:
    value = args.get("id")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise ValueError(f"id must be a positive integer, got {value!r}")
    return value


def _text(args: dict[str, Any], name: str, default: str | None = None) -> str:
    value = args.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _optional_text(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _optional_number(args: dict[str, Any], name: str) -> float | None:
    value = args.get(name)
    return None if value is None else _number(args, name, 0.0)


def _number(args: dict[str, Any], name: str, default: float) -> float:
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


class RequestServer(Service):
    """Answers requests from the `heroagent:requests` list through the engine API.

    Every request with a reply token gets a reply, an error reply when it is malformed;
    nothing a caller sends stops the server.
    """

    name = "requests"

    def __init__(self, api: EngineAPI, redis: Callable[[], aioredis.Redis], bus: Any) -> None:
        super().__init__(bus)
        self.api = api
        self._new_client = redis
        self.redis: aioredis.Redis | None = None
        self.stopping = False
        # Requests taken from the list since start (a client's coalesced submits are one).
        self.taken = 0
        self._answering: set[asyncio.Task[None]] = set()
        # Replies waiting for the push under way; the next push takes them all at once.
        self._outbox: list[tuple[str, bytes]] = []
        self._replier: asyncio.Task[None] | None = None
        self._ops: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "submit": self._submit,
            "submit_each": self._submit_each,
            "submit_many": self._submit_many,
            "submit_graph": self._submit_graph,
            "job": self._job,
            "get_many": self._get_many,
            "history": self._history,
            "jobs": self._jobs,
            "cancel": self._cancel,
            "requeue": self._requeue,
            "requeue_many": self._requeue_many,
            "purge": self._purge,
            "pause": self._pause,
            "resume": self._resume,
            "limits": self._limits,
            "set_limits": self._set_limits,
            "schedules": self._schedules,
            "add_schedule": self._add_schedule,
            "pause_schedule": self._pause_schedule,
            "resume_schedule": self._resume_schedule,
            "remove_schedule": self._remove_schedule,
        }

    async def _start(self) -> None:
        self.stopping = False
        self.redis = self._new_client()
        self._push_replies = self.redis.register_script(_PUSH_REPLIES)
        self.supervise("serve", self.serve)

    async def _stop(self) -> None:
        self.stopping = True
        tasks, self._supervised = self._supervised, []
        if self.redis is not None:
            await cancel_blocked(tasks, self.redis)
            # Requests taken are answered: their callers wait, and a submit may be stored.
            # One stuck past the bound (nothing should be) is cancelled, as before.
            if self._answering:
                _, stuck = await asyncio.wait(self._answering, timeout=STOP_WAIT_SECONDS)
                for task in stuck:
                    task.cancel()
                if stuck:
                    await asyncio.wait(stuck)
            if self._replier is not None:
                await self._replier
            await self.redis.aclose()
            self.redis = None

    async def serve(self) -> None:
        """Serve until `stopping` is set (checked every couple of seconds).

        Up to MAX_IN_FLIGHT requests run at once, so one long request does not hold
        the others up and concurrent submits share their durable writes.
        """
        assert self.redis is not None
        backoff = Backoff()
        while not self.stopping:
            if len(self._answering) >= MAX_IN_FLIGHT:
                await asyncio.wait(self._answering, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                item = await self.redis.blpop([REQUESTS], timeout=BLOCK_SECONDS)
                backoff.reset()
            except (RedisError, OSError) as exc:
                if self.stopping:
                    return
                log.warning("request list unreadable (%s); retrying", exc)
                await backoff.wait()
                continue
            if item is None:
                continue
            # The first is answered at once: the read of the rest is a round trip of its own.
            self._take(item[1])
            for raw in await self._more(MAX_IN_FLIGHT - len(self._answering)):
                self._take(raw)

    def _take(self, raw: bytes | str) -> None:
        """Answer a request taken from the list, in a task of its own."""
        self.taken += 1
        task = asyncio.create_task(self.answer(raw))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _more(self, room: int) -> list[bytes | str]:
        """Up to `room` more requests in one round trip (a burst is not one BLPOP each).

        Nothing when the list cannot be read now (or the server predates LPOP's count): the
        request already taken is answered all the same, the rest wait for the next BLPOP.
        """
        assert self.redis is not None
        if room <= 0:
            return []
        try:
            more = await self.redis.lpop(REQUESTS, room)
        except (RedisError, OSError):
            return []
        return more if isinstance(more, list) else []

    async def answer(self, raw: bytes | str) -> None:
        """Run one request and push its reply (an error reply when it is malformed)."""
        assert self.redis is not None
        token = _token_of(raw)
        if token is None:
            log.warning("dropped a request without a reply token: %r", raw[:200])
            return
        reply = await self.reply_to(raw)
        self._outbox.append((reply_key(token), dumps(reply)))
        if self._replier is None:
            # Not awaited here: the answer's slot frees at once, and the push is shared.
            self._replier = asyncio.create_task(self._send_replies())

    async def _send_replies(self) -> None:
        """Push the replies ready, all of them in one round trip, until none are left."""
        assert self.redis is not None
        try:
            while self._outbox:
                ready, self._outbox = self._outbox, []
                try:
                    await self._push_replies(
                        keys=[key for key, _ in ready],
                        args=[REPLY_TTL_SECONDS, *[reply for _, reply in ready]],
                    )
                except (RedisError, OSError) as exc:  # their callers report no_reply
                    log.warning("could not push %d replies (%s)", len(ready), exc)
        finally:
            self._replier = None

    async def reply_to(self, raw: bytes | str) -> dict[str, Any]:
        """The reply to one request: `{"ok": value}` or `{"error": message, "kind": kind}`."""
        try:
            if len(raw) > MAX_REQUEST_BYTES:
                raise ValueError(f"request of {len(raw)} bytes; the limit is {MAX_REQUEST_BYTES}")
            request = loads(raw)
            if not isinstance(request, dict):
                raise ValueError("a request must be a JSON object")
            op = request.get("op")
            args = request.get("args", {})
            if not isinstance(args, dict):
                raise ValueError("request args must be an object")
            handler = self._ops.get(op) if isinstance(op, str) else None
            if handler is None:
                raise ValueError(f"unknown request {op!r}; known: {', '.join(sorted(self._ops))}")
            return {"ok": await handler(args)}
        except Exception as exc:  # a bug or a damaged record too: answer, log, keep serving
            return _error_reply(exc)

    async def _submit(self, args: dict[str, Any]) -> Any:
        return job_wire(await self.api.submit_spec(spec_from_wire(args)))

    async def _submit_each(self, args: dict[str, Any]) -> Any:
        """Independent submits in one request (a client's concurrent callers): a reply each."""
        items = args.get("jobs")
        if not isinstance(items, list):
            raise ValueError("jobs must be a list of job objects")
        specs: dict[int, JobSpec] = {}
        replies: list[Any] = [None] * len(items)
        for index, item in enumerate(items):
            try:
                specs[index] = spec_from_wire(item)
            except ValueError as exc:
                replies[index] = _error_reply(exc)
        made = await self.api.submit_each(list(specs.values()))
        for index, outcome in zip(specs, made, strict=True):
            if isinstance(outcome, JobView):
                replies[index] = {"ok": job_wire(outcome)}
            elif isinstance(outcome, Exception):
                replies[index] = _error_reply(outcome)
            else:  # cancelled: the engine is stopping
                raise outcome
        return replies

    async def _submit_many(self, args: dict[str, Any]) -> Any:
        items = args.get("jobs")
        if not isinstance(items, list):
            raise ValueError("jobs must be a list of job objects")
        reply = args.get("reply", "full")
        if reply not in ("full", "delta"):
            raise ValueError(f"reply must be 'full' or 'delta', got {reply!r}")
        specs = _batch_specs(items, args.get("shared"))
        if reply == "delta":
            return await self.api.submit_many_delta(specs)
        return [job_wire(v) for v in await self.api.submit_many(specs)]

    async def _submit_graph(self, args: dict[str, Any]) -> Any:
        return [job_wire(v) for v in await self.api.submit_graph(_text(args, "text"))]

    async def _job(self, args: dict[str, Any]) -> Any:
        return job_wire(await self.api.job(_job_id(args)))

    async def _get_many(self, args: dict[str, Any]) -> Any:
        ids = args.get("ids")
        if not isinstance(ids, list) or len(ids) > MAX_LIST_LIMIT:
            raise ValueError(f"ids must be a list of at most {MAX_LIST_LIMIT} job ids")
        job_ids = [_job_id({"id": value}) for value in ids]
        return [job_wire(v) for v in await self.api.jobs_by_id(job_ids)]

    async def _history(self, args: dict[str, Any]) -> Any:
        return [job_wire(v) for v in await self.api.history(_job_id(args))]

    async def _jobs(self, args: dict[str, Any]) -> Any:
        flt = _filter(args)
        limit = int(_number(args, "limit", 50))
        if not 0 < limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIST_LIMIT}, got {limit}")
        before = args.get("before_id")
        before_id = _job_id({"id": before}) if before is not None else None
        return [job_wire(v) for v in await self.api.jobs(flt, limit=limit, before_id=before_id)]

    async def _cancel(self, args: dict[str, Any]) -> Any:
        return job_wire(await self.api.cancel(_job_id(args)))

    async def _requeue(self, args: dict[str, Any]) -> Any:
        return job_wire(await self.api.requeue(_job_id(args)))

    async def _requeue_many(self, args: dict[str, Any]) -> Any:
        return [job_wire(v) for v in await self.api.requeue_many(_filter(args))]

    async def _purge(self, args: dict[str, Any]) -> Any:
        limit = int(_number(args, "limit", MAX_PURGE_PER_REQUEST))
        if not 0 < limit <= MAX_PURGE_PER_REQUEST:
            raise ValueError(f"limit must be 1..{MAX_PURGE_PER_REQUEST}, got {limit}")
        keep = int(_number(args, "keep", 0))
        before = _optional_number(args, "before")
        return await self.api.purge(_filter(args), before=before, keep=keep, limit=limit)

    async def _pause(self, args: dict[str, Any]) -> Any:
        await self.api.pause_queue(_text(args, "circle", "default"), _text(args, "topic"))
        return None

    async def _resume(self, args: dict[str, Any]) -> Any:
        await self.api.resume_queue(_text(args, "circle", "default"), _text(args, "topic"))
        return None

    async def _limits(self, args: dict[str, Any]) -> Any:
        return [limits_wire(v) for v in await self.api.queue_limits()]

    async def _set_limits(self, args: dict[str, Any]) -> Any:
        max_active = args.get("max_active", 0)
        if isinstance(max_active, bool) or not isinstance(max_active, int):
            raise ValueError(f"max_active must be a whole number, got {max_active!r}")
        view = await self.api.set_queue_limits(
            _text(args, "circle", "default"),
            _text(args, "topic"),
            max_active=max_active,
            rate=_text(args, "rate", ""),
        )
        return limits_wire(view)

    async def _schedules(self, args: dict[str, Any]) -> Any:
        return [schedule_wire(v) for v in self.api.schedules()]

    async def _add_schedule(self, args: dict[str, Any]) -> Any:
        options = cast(ScheduleOptions, _schedule_options(args))
        view = await self.api.add_schedule(_text(args, "name"), _text(args, "params"), **options)
        return schedule_wire(view)

    async def _pause_schedule(self, args: dict[str, Any]) -> Any:
        return schedule_wire(await self.api.pause_schedule(_text(args, "name")))

    async def _resume_schedule(self, args: dict[str, Any]) -> Any:
        return schedule_wire(await self.api.resume_schedule(_text(args, "name")))

    async def _remove_schedule(self, args: dict[str, Any]) -> Any:
        await self.api.remove_schedule(_text(args, "name"))
        return None


def _batch_specs(items: list[Any], shared: object) -> list[JobSpec]:
    """A `submit_many`'s specs: each item a job object, or its params alone over `shared`.

    `shared` is the job object of the items sent as params strings (its own params
    unused): checked once for the batch, not once an item.
    """
    template = None
    if shared is not None:
        try:
            template = spec_from_wire(shared)
        except ValueError as exc:
            raise ValueError(f"shared: {exc}") from None
    specs = []
    for index, item in enumerate(items):
        try:
            if type(item) is str and template is not None:
                specs.append(spec_with_params(template, item))
            else:
                specs.append(spec_from_wire(item))
        except ValueError as exc:
            raise JobRefused(f"item {index}: {exc}", index=index) from None
    return specs


def _error_reply(exc: Exception) -> dict[str, Any]:
    """The error reply for what failed a request (or one item of a `submit_each`)."""
    if isinstance(exc, JobRefused):
        # Where it went wrong travels too, so a client re-raises the same typed error.
        return {
            "error": str(exc),
            "kind": exc.kind,
            "line": exc.line,
            "col": exc.col,
            "index": exc.index,
            "problems": [dataclasses.asdict(p) for p in exc.problems],
        }
    if isinstance(exc, EngineError):
        return {"error": str(exc), "kind": exc.kind}
    if isinstance(exc, ValueError | TypeError | KeyError | OverflowError):
        return {"error": f"malformed request: {exc}", "kind": "refused"}
    log.error("request failed", exc_info=exc)
    return {"error": f"the engine failed: {type(exc).__name__}: {exc}", "kind": "internal"}


def _filter(args: dict[str, Any]) -> JobFilter:
    """The JobFilter a `jobs` or `requeue_many` request narrows by."""
    dead = args.get("dead")
    if dead is not None and not isinstance(dead, bool):
        raise ValueError(f"dead must be true or false, got {dead!r}")
    return JobFilter(
        status=_optional_text(args, "status"),
        circle=_optional_text(args, "circle"),
        topic=_optional_text(args, "topic"),
        text=_optional_text(args, "text"),
        since=_optional_number(args, "since"),
        until=_optional_number(args, "until"),
        dead=dead,
    )


def _schedule_options(args: dict[str, Any]) -> dict[str, Any]:
    """The options of an `add_schedule` request, each of its type; the engine checks the rest."""
    known = ScheduleOptions.__required_keys__ | ScheduleOptions.__optional_keys__
    unknown = sorted(set(args) - known - {"name", "params"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    options: dict[str, Any] = {"topic": _text(args, "topic")}
    for name in sorted(known & set(args)):
        options[name] = _number(args, name, 60.0) if name == "timeout" else _text(args, name)
    return options


def _token_of(raw: bytes | str) -> str | None:
    """The reply token of a request, or None when it has none a reply could go to.

    `call` puts the token first, so an oversized request is answered without parsing it.
    """
    head = raw[:100].decode(errors="replace") if isinstance(raw, bytes) else raw[:100]
    found = _TOKEN_AT_START.match(head)
    if found:
        return found[1]
    if len(raw) > MAX_REQUEST_BYTES:
        return None
    try:
        request = loads(raw)
    except ValueError:
        return None
    token = request.get("token") if isinstance(request, dict) else None
    if isinstance(token, str) and _TOKEN.fullmatch(token):
        return token
    return None
