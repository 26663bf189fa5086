"""`heroagent submit`'s work, apart from its typer definition: it also runs without typer.

Both `heroagent_tui.fast` (the fast path of a plain `heroagent submit`) and the typer
command in heroagent_tui/commands/jobs.py call `submit_jobs` with the same parameters;
nothing here imports typer or rich, and the client (with its Redis connection) loads
when a command runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from heroagent_tui.commands.common import CliState, echo_json, fail, read_input

if TYPE_CHECKING:
    from heroagent import Client, JobView

T = TypeVar("T")


def echo(text: str) -> None:
    """One line to standard output."""
    print(text, flush=True)


@contextmanager
def client_of(state: CliState) -> Iterator[Client]:
    """A client for the configured engine; its errors end the program with one line."""
    from heroagent import Client, EngineError, EngineUnreachable

    try:
        with Client.from_config(state.load().config) as client:
            yield client
    except EngineUnreachable as exc:
        fail(str(exc), 3)
    except EngineError as exc:
        fail(str(exc), 1)


def run_client(state: CliState, work: Callable[[Client], T]) -> T:
    """`work` done with a client of the configured engine."""
    with client_of(state) as client:
        return work(client)


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else ""


def status_text(job: JobView) -> str:
    """The status, and for a running job that reports progress how far it is."""
    if job.status != "active" or job.progress is None:
        return job.status
    return f"{job.status} {round(job.progress * 100)}%"


def print_job(job: JobView) -> None:
    for name in ("job_id", "circle", "topic", "params_type", "status", "attempts", "worker"):
        echo(f"{name:>14}: {getattr(job, name)}")
    if job.progress is not None:
        line = f"{round(job.progress * 100)}% {job.progress_message}".rstrip()
        echo(f"{'progress':>14}: {line}")
    for name in ("time_scheduled", "time_start", "time_end"):
        echo(f"{name:>14}: {stamp(getattr(job, name))}")
    links = (
        ("name", job.name),
        ("unique_key", job.unique_key),
        ("depends_on", ", ".join(str(i) for i in job.depends_on)),
        ("waits for", ", ".join(str(i) for i in job.wait_for)),
    )
    for label, value in links:
        if value:
            echo(f"{label:>14}: {value}")
    if job.error:
        echo(f"{'error':>14}: {job.error}")
    if job.result:
        echo(f"{'result':>14}: {job.result}")
    for line in job.log_lines:
        echo(f"{'log':>14}: {line}")


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds from `30`, `30s`, `1.5m`, `2h` or `1d`; ends the program on anything else."""
    text = text.strip().lower()
    scale = _UNITS.get(text[-1:], 0.0)
    number = text[:-1] if scale else text
    try:
        value = float(number) * (scale or 1.0)
    except ValueError:
        fail(f"{option}: {text!r} is not a duration (like 30, 30s, 5m, 2h or 1d)")
    if not value >= 0:
        fail(f"{option}: {text!r} must not be negative")
    return value


def parse_time(text: str) -> float:
    """Epoch seconds from an ISO time; without an offset it is this machine's local time."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        fail(f"--at: {text!r} is not a time like 2026-12-24T08:00")


def _items(files: list[str], each_line: bool) -> list[tuple[str, str]]:
    """(label, params) of every job to submit, in order; labels name them in errors."""
    sources = files or ["-"]
    if not each_line:
        return [("stdin" if name == "-" else name, read_input(name)) for name in sources]
    items = []
    for name in sources:
        where = "stdin" if name == "-" else name
        for number, line in enumerate(read_input(name).splitlines(), 1):
            if line.strip():  # blank lines separate, they are not jobs
                items.append((f"{where} line {number}", line + "\n"))
    return items


def submit_jobs(
    state: CliState,
    *,
    files: list[str] | tuple[str, ...] | None,
    each_line: bool,
    topic: str,
    circle: str,
    params_type: str,
    timeout: float,
    log: bool,
    delay: str | None,
    at: str | None,
    retries: int | None,
    backoff: str | None,
    backoff_base: str | None,
    backoff_max: str | None,
    retry_on: str | None,
    priority: int | None,
    unique_key: str,
    unique_for: str | None,
    after: str | None,
    on_parent_error: str,
    graph: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Submit jobs to the running engine, all in one batch: all are queued or none.

    With one file (or stdin) the JSON is one job; with several, --each-line or --graph,
    a list.
    """
    from heroagent import JobRefused, JobSpec

    if graph is not None:
        if files:
            fail("--graph takes the jobs from its file; give no other files")
        _submit_graph(state, read_input(graph), wait=wait, as_json=as_json)
        return
    items = _items(list(files or ()), each_line)
    if not items:
        fail("nothing to submit")
    several = each_line or len(items) > 1
    timing: dict[str, Any] = {
        "delay": parse_duration(delay, "--delay") if delay else 0.0,
        "run_at": parse_time(at) if at else 0.0,
        "retries": retries,
        "backoff": backoff,
        "backoff_base": parse_duration(backoff_base, "--backoff-base") if backoff_base else None,
        "backoff_max": parse_duration(backoff_max, "--backoff-max") if backoff_max else None,
        "retry_on": tuple(k.strip() for k in retry_on.split(",") if k.strip())
        if retry_on is not None
        else None,
        "priority": priority,
    }
    links: dict[str, Any] = {
        "unique_key": unique_key,
        "unique_for": parse_duration(unique_for, "--unique-for") if unique_for else 0.0,
        "depends_on": _ids(after, "--after") if after else (),
        "on_parent_error": on_parent_error,
    }
    specs = [
        JobSpec(params, topic, circle, params_type, timeout, log, **timing, **links)
        for _, params in items
    ]

    def work(client: Client) -> list[JobView]:
        try:
            jobs = client.submit_many(specs)
        except JobRefused as exc:
            if exc.index is None or not several:
                fail(str(exc).removeprefix("item 0: "))
            # Name the item the way the user wrote it: a file, or a line of the input.
            fail(f"{items[exc.index][0]}: {str(exc).removeprefix(f'item {exc.index}: ')}")
        return client.wait_many([job.job_id for job in jobs]) if wait else jobs

    _report(run_client(state, work), several=several, wait=wait, as_json=as_json)


def _submit_graph(state: CliState, text: str, *, wait: bool, as_json: bool) -> None:
    from heroagent import JobRefused

    def work(client: Client) -> list[JobView]:
        try:
            jobs = client.submit_graph(text)
        except JobRefused as exc:
            fail(str(exc))
        return client.wait_many([job.job_id for job in jobs]) if wait else jobs

    _report(run_client(state, work), several=True, wait=wait, as_json=as_json)


def _ids(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        fail(f"{option}: {text!r} is not a comma-separated list of job ids")


def _report(jobs: list[JobView], *, several: bool, wait: bool, as_json: bool) -> None:
    """What `submit` prints for the jobs it made (or found, for a held unique key)."""
    if as_json:
        echo_json(jobs if several else jobs[0])
    elif wait:
        for job in jobs:
            print_job(job)
    else:
        for job in jobs:
            named = f"job {job.job_id}" + (f" ({job.name})" if job.name else "")
            if job.duplicate:
                echo(f"{named} already holds unique key {job.unique_key!r}: {job.status}")
            elif job.wait_for:
                waits = ", ".join(str(i) for i in job.wait_for)
                echo(f"{named} in {job.queue} waits for {waits}")
            elif job.status == "scheduled":
                echo(f"{named} scheduled in {job.queue} for {stamp(job.run_at)}")
            else:
                echo(f"{named} queued in {job.queue}")
    if wait and any(job.status == "error" for job in jobs):
        raise SystemExit(1)
