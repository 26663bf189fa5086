"""`heroagent submit|job|jobs|cancel|requeue|pause|resume`: talk to the running engine via Redis."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from redis.exceptions import RedisError

from core.config import Config
from core.events import EventBus
from core.jobs import keys
from core.redis_server import RedisService
from core.remote import RequestError, call
from heroagent_tui.commands.common import fail, state_of

T = TypeVar("T")
ENDED = ("done", "error")


def _run(config: Config, work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        redis = RedisService(config, EventBus()).loop_client()
        try:
            return await work(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(main())
    except RequestError as exc:
        fail(str(exc), 3 if exc.kind == "no_engine" else 1)
    except (OSError, RedisError) as exc:
        fail(f"cannot reach the engine's Redis server ({exc}); is heroagent running?", 3)


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else ""


def _print_jobs(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("id", "queue", "type", "status", "scheduled", "attempts", "error"):
        table.add_column(column, justify="right" if column in ("id", "attempts") else "left")
    for job in rows:
        table.add_row(
            str(job["job_id"]),
            f"{job['circle']}/{job['topic']}",
            job["params_type"],
            job["status"],
            _stamp(job["time_scheduled"]),
            str(job["attempts"]),
            job["error"][:60],
        )
    Console(file=sys.stdout).print(table)


def _print_job(job: dict[str, Any]) -> None:
    for name in ("job_id", "circle", "topic", "params_type", "status", "attempts", "worker"):
        typer.echo(f"{name:>14}: {job[name]}")
    for name in ("time_scheduled", "time_start", "time_end"):
        typer.echo(f"{name:>14}: {_stamp(job[name])}")
    if job["error"]:
        typer.echo(f"{'error':>14}: {job['error']}")
    if job["result"]:
        typer.echo(f"{'result':>14}: {job['result']}")
    for line in job["log_lines"]:
        typer.echo(f"{'log':>14}: {line}")


async def _wait_for_end(redis: Any, job_id: int) -> dict[str, Any]:
    """Follow the engine's events until the job has ended, then read it back."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.EVENTS_CHANNEL)
    try:
        # Subscribed first, then read: an end in between is not missed.
        job: dict[str, Any] = await call(redis, "job", {"id": job_id})
        while job["status"] not in ENDED:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2.0)
            if message is None:
                continue
            event = json.loads(message["data"])
            if event.get("id") == job_id and event.get("status") in ENDED:
                job = await call(redis, "job", {"id": job_id})
        return job
    finally:
        await pubsub.aclose()


def submit(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="A file of params, or - for standard input."),
    topic: str = typer.Option("default", "--topic", "-t", help="The queue's topic."),
    circle: str = typer.Option("default", "--circle", help="The queue's circle."),
    params_type: str = typer.Option(
        "heroscript", "--type", help="heroscript, rhaiscript, openrpc or ai."
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds the job may run."),
    log: bool = typer.Option(False, "--log", help="Keep the job's log lines."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the end; exit 1 on error."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Submit a job to the running engine."""
    try:
        params = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    args = {
        "topic": topic,
        "params": params,
        "circle": circle,
        "params_type": params_type,
        "timeout": timeout,
        "log": log,
    }

    async def work(redis: Any) -> dict[str, Any]:
        job: dict[str, Any] = await call(redis, "submit", args)
        return await _wait_for_end(redis, job["job_id"]) if wait else job

    job = _run(state_of(ctx).load().config, work)
    if as_json:
        typer.echo(json.dumps(job))
    elif wait:
        _print_job(job)
    else:
        typer.echo(f"job {job['job_id']} queued in {circle}/{topic}")
    if wait and job["status"] == "error":
        raise typer.Exit(1)


def show_job(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., help="The job's id."),
    history: bool = typer.Option(False, "--history", help="Every version, oldest first."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one job (and its version history)."""
    op = "history" if history else "job"
    found = _run(state_of(ctx).load().config, lambda redis: call(redis, op, {"id": job_id}))
    if as_json:
        typer.echo(json.dumps(found))
    elif history:
        _print_jobs(found, f"job {job_id}: {len(found)} versions")
    else:
        _print_job(found)


def list_jobs(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="new, active, done or error."),
    topic: str | None = typer.Option(None, "--topic", "-t"),
    circle: str | None = typer.Option(None, "--circle"),
    text: str | None = typer.Option(None, "--text", help="Words in params or error."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List jobs from the history, newest first."""
    args = {"status": status, "topic": topic, "circle": circle, "text": text, "limit": limit}
    found = _run(state_of(ctx).load().config, lambda redis: call(redis, "jobs", args))
    if as_json:
        typer.echo(json.dumps(found))
    else:
        _print_jobs(found, f"{len(found)} jobs")


def _change(ctx: typer.Context, op: str, job_id: int, as_json: bool) -> None:
    found = _run(state_of(ctx).load().config, lambda redis: call(redis, op, {"id": job_id}))
    if as_json:
        typer.echo(json.dumps(found))
    else:
        typer.echo(f"job {found['job_id']} is {found['status']}")


def cancel_job(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., help="The job's id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """End a waiting or running job as cancelled (a running one is stopped)."""
    _change(ctx, "cancel", job_id, as_json)


def requeue_job(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., help="The job's id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run an ended job again under its id; its history continues."""
    _change(ctx, "requeue", job_id, as_json)


def _queue(name: str) -> dict[str, str]:
    circle, sep, topic = name.rpartition("/")
    if not topic:
        fail(f"{name!r} is not a queue; write CIRCLE/TOPIC or TOPIC")
    return {"circle": circle if sep else "default", "topic": topic}


def pause_queue(
    ctx: typer.Context, queue: str = typer.Argument(..., help="CIRCLE/TOPIC, or TOPIC.")
) -> None:
    """Stop handing out a queue's jobs; they keep waiting, new ones queue up."""
    args = _queue(queue)
    _run(state_of(ctx).load().config, lambda redis: call(redis, "pause", args))
    typer.echo(f"{args['circle']}/{args['topic']} paused")


def resume_queue(
    ctx: typer.Context, queue: str = typer.Argument(..., help="CIRCLE/TOPIC, or TOPIC.")
) -> None:
    """Hand out a paused queue's jobs again."""
    args = _queue(queue)
    _run(state_of(ctx).load().config, lambda redis: call(redis, "resume", args))
    typer.echo(f"{args['circle']}/{args['topic']} resumed")
