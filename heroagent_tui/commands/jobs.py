"""`heroagent submit|job|jobs|cancel|requeue|pause|resume|dead`: the engine via heroagent.Client."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from heroagent_tui.commands.common import echo_json, fail, state_of
from heroagent_tui.commands.options import JSON_OPTION, listing_group
from heroagent_tui.commands.submit import (
    parse_duration,
    print_job,
    run_client,
    stamp,
    status_text,
    submit_jobs,
)

# The client (and with it redis-py) loads when a command runs, not for `--help` or for
# the other commands.
if TYPE_CHECKING:
    from heroagent import Client, JobFilter, JobView

T = TypeVar("T")


def _run(ctx: typer.Context, work: Callable[[Client], T]) -> T:
    return run_client(state_of(ctx), work)


def _print_jobs(rows: list[JobView], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("id", "queue", "type", "status", "scheduled", "attempts", "error"):
        table.add_column(column, justify="right" if column in ("id", "attempts") else "left")
    for job in rows:
        table.add_row(
            str(job.job_id),
            job.queue,
            job.params_type,
            status_text(job),
            stamp(job.time_scheduled),
            str(job.attempts),
            job.error[:60],
        )
    Console(file=sys.stdout).print(table)


def submit(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        None, help="Files of params (one job each), or - for standard input (the default)."
    ),
    each_line: bool = typer.Option(
        False, "--each-line", help="Each non-blank line (of stdin or the files) is one job."
    ),
    topic: str = typer.Option("default", "--topic", "-t", help="The queue's topic."),
    circle: str = typer.Option("default", "--circle", help="The queue's circle."),
    params_type: str = typer.Option(
        "heroscript", "--type", help="heroscript, rhaiscript, openrpc or ai."
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds the job may run."),
    log: bool = typer.Option(False, "--log", help="Keep the job's log lines."),
    delay: str | None = typer.Option(
        None, "--delay", help="Wait this long before queueing: 30, 30s, 5m, 2h or 1d."
    ),
    at: str | None = typer.Option(
        None, "--at", help="Queue at this local time (or with an offset): 2026-12-24T08:00."
    ),
    retries: int | None = typer.Option(
        None, "--retries", min=0, help="Attempts after the first (default: the queue's)."
    ),
    backoff: str | None = typer.Option(None, "--backoff", help="fixed or exponential."),
    backoff_base: str | None = typer.Option(
        None, "--backoff-base", help="The fixed wait, or the first exponential step (30s)."
    ),
    backoff_max: str | None = typer.Option(
        None, "--backoff-max", help="The longest wait between attempts (5m)."
    ),
    retry_on: str | None = typer.Option(
        None, "--retry-on", help="Error kinds retried, comma-separated: failed,timeout,..."
    ),
    priority: int | None = typer.Option(
        None, "--priority", "-p", min=0, max=9, help="0-9, higher runs first (default: 0)."
    ),
    unique_key: str = typer.Option(
        "", "--unique-key", help="While a job with this key has not ended, answer with it."
    ),
    unique_for: str | None = typer.Option(
        None, "--unique-for", help="Keep the unique key this long after the job ends (5m)."
    ),
    after: str | None = typer.Option(
        None, "--after", help="Job ids to wait for, comma-separated: runs once all are done."
    ),
    on_parent_error: str = typer.Option(
        "fail", "--on-parent-error", help="fail (the default) or run, when a parent fails."
    ),
    graph: str | None = typer.Option(
        None, "--graph", help="A HeroScript job graph (!!job.define ... after:...), or -."
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait for the end; exit 1 on error."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Submit jobs to the running engine, all in one batch: all are queued or none.

    With one file (or stdin) the JSON is one job; with several, --each-line or --graph,
    a list.
    """
    submit_jobs(state_of(ctx), **ctx.params)


_JOB_ID = typer.Argument(..., help="The job's id.")


def show_job(
    ctx: typer.Context,
    job_id: int = _JOB_ID,
    history: bool = typer.Option(False, "--history", help="Every version, oldest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one job (and its version history)."""
    if history:
        versions = _run(ctx, lambda client: client.history(job_id))
        if as_json:
            echo_json(versions)
        else:
            _print_jobs(versions, f"job {job_id}: {len(versions)} versions")
        return
    job = _run(ctx, lambda client: client.get(job_id))
    if as_json:
        echo_json(job)
    else:
        print_job(job)


# What listings and purges narrow by, the same in every command that takes them.
_TOPIC = typer.Option(None, "--topic", "-t")
_CIRCLE = typer.Option(None, "--circle")
_LIMIT = typer.Option(20, "--limit", "-n", min=1, max=1000)


jobs_app = listing_group("List jobs from the history (newest first), or purge ended ones.")


@jobs_app.callback()
def list_jobs(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="new, active, done or error."),
    topic: str | None = _TOPIC,
    circle: str | None = _CIRCLE,
    text: str | None = typer.Option(None, "--text", help="Words in params or error."),
    limit: int = _LIMIT,
    as_json: bool = JSON_OPTION,
) -> None:
    """List jobs from the history, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from heroagent import JobFilter

    try:
        flt = JobFilter(status=status, circle=circle, topic=topic, text=text)
    except ValueError as exc:
        fail(str(exc))
    found = _run(ctx, lambda client: client.jobs(flt, limit=limit))
    if as_json:
        echo_json(found)
    else:
        _print_jobs(found, f"{len(found)} jobs")


def _change(ctx: typer.Context, job: Callable[[Client], JobView], as_json: bool) -> None:
    found = _run(ctx, job)
    if as_json:
        echo_json(found)
    else:
        typer.echo(f"job {found.job_id} is {found.status}")


def _job_command(change: Callable[[Client, int], JobView], doc: str) -> Callable[..., None]:
    """A command that makes one change to one job and shows the job as it is then."""

    def command(ctx: typer.Context, job_id: int = _JOB_ID, as_json: bool = JSON_OPTION) -> None:
        _change(ctx, lambda client: change(client, job_id), as_json)

    command.__doc__ = doc  # typer's help for the command
    return command


cancel_job = _job_command(
    lambda client, job_id: client.cancel(job_id),
    "End a waiting or running job as cancelled (a running one is stopped).",
)
requeue_job = _job_command(
    lambda client, job_id: client.requeue(job_id),
    "Run an ended job again under its id; its history continues.",
)


dead_app = listing_group("Dead letters: jobs that ended in error after their last allowed attempt.")


@dead_app.callback()
def list_dead(
    ctx: typer.Context,
    topic: str | None = _TOPIC,
    circle: str | None = _CIRCLE,
    limit: int = _LIMIT,
    as_json: bool = JSON_OPTION,
) -> None:
    """List dead letters, newest first, with why they failed and their attempts."""
    if ctx.invoked_subcommand is not None:
        return
    from heroagent import JobFilter

    flt = JobFilter(circle=circle, topic=topic)
    found = _run(ctx, lambda client: client.dead(flt, limit=limit))
    if as_json:
        echo_json(found)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(found)} dead letters", title_justify="left")
    for column in ("id", "queue", "attempts", "reason", "ended", "error"):
        table.add_column(column, justify="right" if column in ("id", "attempts") else "left")
    for job in found:
        table.add_row(
            str(job.job_id),
            job.queue,
            str(job.attempts),
            job.error_kind,
            stamp(job.time_end),
            job.error[:60],
        )
    Console(file=sys.stdout).print(table)


@dead_app.command("requeue")
def requeue_dead(
    ctx: typer.Context,
    job_ids: list[int] = typer.Argument(None, help="Dead letters to run again."),
    every: bool = typer.Option(False, "--all", help="Every dead letter (narrowed below)."),
    topic: str | None = typer.Option(None, "--topic", "-t", help="With --all: this topic."),
    circle: str | None = typer.Option(None, "--circle", help="With --all: this circle."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run dead letters again under their ids (their history continues)."""
    from heroagent import JobFilter

    if every == bool(job_ids):
        fail("give job ids or --all (not both)")

    def work(client: Client) -> list[JobView]:
        if every:
            return client.requeue_many(JobFilter(dead=True, circle=circle, topic=topic))
        back = []
        for job_id in job_ids:
            if not client.get(job_id).dead:
                fail(f"job {job_id} is not a dead letter")
            back.append(client.requeue(job_id))
        return back

    found = _run(ctx, work)
    if as_json:
        echo_json(found)
    else:
        typer.echo(f"{len(found)} dead letters requeued")


def _ended_before(text: str) -> float:
    """Epoch seconds from an age (`30d`: ended more than 30 days ago) or an ISO time."""
    if re.fullmatch(r"\s*\d+(\.\d+)?[smhdSMHD]?\s*", text):
        return time.time() - parse_duration(text, "--before")
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        fail(f"--before: {text!r} is neither an age (30d, 12h) nor a time (2026-12-01T00:00)")


def _purge(
    ctx: typer.Context, flt: JobFilter, before: str | None, keep: int, yes: bool, what: str
) -> None:
    """Ask (on a terminal), purge in steps showing the count, print how many went."""
    bound = _ended_before(before) if before else None
    if bound is not None:
        what += f" that ended before {stamp(bound)}"
    if keep:
        what += f", all but the newest {keep}"
    if not yes:
        if not sys.stdin.isatty():
            fail(f"purging {what} needs --yes when not asked on a terminal")
        typer.confirm(f"Delete {what} from the history, for good?", abort=True)
    shown = sys.stderr.isatty()

    def step(total: int) -> None:
        if shown:
            typer.echo(f"\rpurged {total}", nl=False, err=True)

    count = _run(ctx, lambda client: client.purge(flt, before=bound, keep=keep, progress=step))
    if shown:
        typer.echo("", err=True)
    typer.echo(f"{count} jobs purged")


_YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
_BEFORE = typer.Option(
    None, "--before", help="Only jobs that ended longer ago (30d, 12h) or before a time."
)


@jobs_app.command("purge")
def purge_jobs(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="done or error (default both)."),
    before: str | None = _BEFORE,
    keep: int = typer.Option(0, "--keep", min=0, help="Spare the newest this many."),
    topic: str | None = _TOPIC,
    circle: str | None = _CIRCLE,
    yes: bool = _YES,
) -> None:
    """Delete ended jobs (done, error) from the history for good: every version goes."""
    from heroagent import JobFilter

    if status not in (None, "done", "error"):
        fail(f"--status: {status!r} has not ended; purge takes done or error")
    flt = JobFilter(status=status, circle=circle, topic=topic)
    _purge(ctx, flt, before, keep, yes, f"{status or 'done and error'} jobs")


@dead_app.command("purge")
def purge_dead(
    ctx: typer.Context,
    before: str | None = _BEFORE,
    topic: str | None = _TOPIC,
    circle: str | None = _CIRCLE,
    yes: bool = _YES,
) -> None:
    """Delete dead letters from the history for good (every version of each)."""
    from heroagent import JobFilter

    _purge(ctx, JobFilter(dead=True, circle=circle, topic=topic), before, 0, yes, "dead letters")


def queue_of(name: str) -> tuple[str, str]:
    circle, sep, topic = name.rpartition("/")
    if not topic:
        fail(f"{name!r} is not a queue; write CIRCLE/TOPIC or TOPIC")
    return (circle if sep else "default"), topic


_QUEUE = typer.Argument(..., help="CIRCLE/TOPIC, or TOPIC.")


def _queue_command(
    change: Callable[[Client, str, str], object], words: str, doc: str
) -> Callable[..., None]:
    """A command that pauses or resumes one queue."""

    def command(ctx: typer.Context, queue: str = _QUEUE) -> None:
        circle, topic = queue_of(queue)
        _run(ctx, lambda client: change(client, circle, topic))
        typer.echo(f"{circle}/{topic} {words}")

    command.__doc__ = doc  # typer's help for the command
    return command


pause_queue = _queue_command(
    lambda client, circle, topic: client.pause(circle, topic),
    "paused",
    "Stop handing out a queue's jobs; they keep waiting, new ones queue up.",
)
resume_queue = _queue_command(
    lambda client, circle, topic: client.resume(circle, topic),
    "resumed",
    "Hand out a paused queue's jobs again.",
)
