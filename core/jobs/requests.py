"""Requests over Redis: how `heroagent submit|job|jobs` reach the engine that owns OurDB."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.jobs import keys
from core.jobs.manager import JobError, JobManager, JobNotFoundError
from core.jobs.model import Job

log = logging.getLogger(__name__)

REPLY_TTL_SECONDS = 60
BLOCK_SECONDS = 2  # below redis-py's 5 s default socket timeout


class RequestError(RuntimeError):
    """The engine refused a request, or none answered; the message is for people."""

    def __init__(self, message: str, kind: str = "refused") -> None:
        super().__init__(message)
        self.kind = kind


def job_dict(job: Job) -> dict[str, Any]:
    """A job as JSON-ready data."""
    return dataclasses.asdict(job)


class RequestServer:
    """Answers requests from the `heroagent:requests` list with the job manager."""

    def __init__(self, redis: aioredis.Redis, manager: JobManager) -> None:
        self.redis = redis
        self.manager = manager
        self.stopping = False

    async def run(self) -> None:
        """Serve until `stopping` is set (checked every couple of seconds)."""
        while not self.stopping:
            try:
                item = await self.redis.blpop([keys.REQUESTS], timeout=BLOCK_SECONDS)
            except (RedisError, OSError) as exc:
                if self.stopping:
                    return
                log.warning("request list unreadable (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            if item is not None:
                await self.answer(item[1])

    async def answer(self, raw: bytes | str) -> None:
        """Run one request and push its reply."""
        try:
            request = json.loads(raw)
            reply_to = keys.reply_key(str(request["token"]))
        except (ValueError, KeyError, TypeError):
            log.warning("dropped a malformed request: %r", raw[:200])
            return
        try:
            reply: dict[str, Any] = {"ok": await self._dispatch(request)}
        except JobNotFoundError as exc:
            reply = {"error": str(exc), "kind": "not_found"}
        except (JobError, ValueError, TypeError, KeyError) as exc:
            reply = {"error": str(exc), "kind": "refused"}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(reply_to, json.dumps(reply))
            pipe.expire(reply_to, REPLY_TTL_SECONDS)
            await pipe.execute()

    async def _dispatch(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        args = request.get("args", {})
        if not isinstance(args, dict):
            raise ValueError("request args must be an object")
        manager = self.manager
        if op == "submit":
            job = await manager.create_job(
                str(args["topic"]),
                str(args["params"]),
                circle=str(args.get("circle", "default")),
                params_type=str(args.get("params_type", "heroscript")),
                timeout=float(args.get("timeout", 60)),
                log=bool(args.get("log", False)),
            )
            return job_dict(job)
        if op == "job":
            return job_dict(await manager.get_job(int(args["id"])))
        if op == "history":
            return [job_dict(v) for v in await manager.job_history(int(args["id"]))]
        if op == "jobs":
            found = await manager.list_jobs(
                status=args.get("status"),
                circle=args.get("circle"),
                topic=args.get("topic"),
                text=args.get("text"),
                limit=int(args.get("limit", 50)),
                before_id=args.get("before_id"),
            )
            return [job_dict(job) for job in found]
        raise ValueError(f"unknown request {op!r}")


async def call(
    redis: aioredis.Redis, op: str, args: dict[str, Any], *, wait_seconds: float = 10.0
) -> Any:
    """Send one request to the engine and wait for its answer."""
    token = secrets.token_hex(12)
    payload = json.dumps({"token": token, "op": op, "args": args})
    await redis.rpush(keys.REQUESTS, payload)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        left = deadline - loop.time()
        if left <= 0:
            # Take the request back if nobody picked it up, so it does not run later.
            await redis.lrem(keys.REQUESTS, 1, payload)
            raise RequestError(
                f"no engine answered within {wait_seconds:g} s; is `heroagent --serve` "
                "(or the app) running with this config?",
                kind="no_engine",
            )
        item = await redis.blpop(
            [keys.reply_key(token)], timeout=min(BLOCK_SECONDS, max(left, 0.1))
        )
        if item is not None:
            reply = json.loads(item[1])
            if "error" in reply:
                raise RequestError(reply["error"], reply.get("kind", "refused"))
            return reply["ok"]
