"""Client: the blocking twin of AsyncClient, for scripts and code without an event loop."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from core.api import JobFilter, JobSpec, JobView, ScheduleView
from core.config import Config
from heroagent.aio import AsyncClient
from heroagent.errors import ClientError

T = TypeVar("T")
CLOSE_SECONDS = 10.0


class Client:
    """The engine's jobs from blocking code: the same calls as `AsyncClient`, not awaited.

    `Client()` reads the config the way `heroagent` does; `Client(url=..., password=...)`
    names a Redis server; `Client.from_config(config)` takes a loaded config. Use it as
    `with Client() as client:` or call `close()`. One client may be shared by threads.

    It runs an `AsyncClient` on a private event loop in a background thread rather than
    a second implementation over redis-py's blocking client: the request protocol, the
    wait on the events channel and the connection (which `RedisService` builds, as an
    asyncio client) then exist once, and the two clients cannot drift apart. The thread
    is a daemon, so a client never closed does not keep the program alive; calling a
    `Client` from inside a running event loop is fine too, as that loop is not used.
    """

    def __init__(
        self,
        url: str | None = None,
        password: str | None = None,
        *,
        config: Config | None = None,
        config_file: str | Path | None = None,
        wait_seconds: float = 10.0,
    ) -> None:
        self._aio = AsyncClient(
            url, password, config=config, config_file=config_file, wait_seconds=wait_seconds
        )
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def submit(
        self,
        params: str,
        *,
        topic: str = "default",
        circle: str = "default",
        params_type: str = "heroscript",
        timeout: float = 60,
        log: bool = False,
        delay: float = 0.0,
        run_at: float = 0.0,
        retries: int | None = None,
        backoff: str | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        retry_on: Sequence[str] | None = None,
        unique_key: str = "",
        unique_for: float = 0.0,
        depends_on: Sequence[int] = (),
        on_parent_error: str = "fail",
    ) -> JobView:
        """Queue one job; raises JobRefused (see `AsyncClient.submit` for the other fields)."""
        return self._run(
            self._aio.submit(
                params,
                topic=topic,
                circle=circle,
                params_type=params_type,
                timeout=timeout,
                log=log,
                delay=delay,
                run_at=run_at,
                retries=retries,
                backoff=backoff,
                backoff_base=backoff_base,
                backoff_max=backoff_max,
                retry_on=retry_on,
                unique_key=unique_key,
                unique_for=unique_for,
                depends_on=depends_on,
                on_parent_error=on_parent_error,
            )
        )

    def submit_graph(self, text: str) -> list[JobView]:
        """Queue the jobs of a HeroScript graph as one batch (see `AsyncClient.submit_graph`)."""
        return self._run(self._aio.submit_graph(text))

    def submit_many(
        self,
        jobs: Iterable[JobSpec | str],
        *,
        topic: str = "default",
        circle: str = "default",
        params_type: str = "heroscript",
        timeout: float = 60,
        log: bool = False,
    ) -> list[JobView]:
        """Queue a batch in one request; all or none (see `AsyncClient.submit_many`)."""
        return self._run(
            self._aio.submit_many(
                list(jobs),
                topic=topic,
                circle=circle,
                params_type=params_type,
                timeout=timeout,
                log=log,
            )
        )

    def get(self, job_id: int) -> JobView:
        """A job's current state; raises JobNotFound."""
        return self._run(self._aio.get(job_id))

    def get_many(self, job_ids: Iterable[int]) -> list[JobView]:
        """The current state of each job, in the order asked."""
        return self._run(self._aio.get_many(list(job_ids)))

    def history(self, job_id: int) -> list[JobView]:
        """Every stored version of a job, oldest first."""
        return self._run(self._aio.history(job_id))

    def jobs(
        self, flt: JobFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[JobView]:
        """A page of the history, newest first; pass the last id as `before_id` for more."""
        return self._run(self._aio.jobs(flt, limit=limit, before_id=before_id))

    def dead(
        self, flt: JobFilter | None = None, *, limit: int = 50, before_id: int | None = None
    ) -> list[JobView]:
        """Dead letters, newest first: jobs that ended in error after their last attempt."""
        return self._run(self._aio.dead(flt, limit=limit, before_id=before_id))

    def requeue_many(self, flt: JobFilter) -> list[JobView]:
        """Run again every ended job the filter finds (e.g. `JobFilter(dead=True)`)."""
        return self._run(self._aio.requeue_many(flt))

    def wait(self, job_id: int, timeout: float | None = None) -> JobView:
        """Wait on the events channel until the job has ended; its final state."""
        return self._run(self._aio.wait(job_id, timeout))

    def wait_many(self, job_ids: Iterable[int], timeout: float | None = None) -> list[JobView]:
        """Wait until every one of these jobs has ended; their final states, in order."""
        return self._run(self._aio.wait_many(list(job_ids), timeout))

    def result(self, job_id: int, timeout: float | None = None) -> str:
        """Wait for the job and return its result; raises JobFailed when it ended in error."""
        return self._run(self._aio.result(job_id, timeout))

    def cancel(self, job_id: int) -> JobView:
        """End a waiting or running job as cancelled; raises JobEnded when it has ended."""
        return self._run(self._aio.cancel(job_id))

    def requeue(self, job_id: int) -> JobView:
        """Run an ended job again under its id; raises JobNotEnded while it runs."""
        return self._run(self._aio.requeue(job_id))

    def pause(self, circle: str, topic: str) -> None:
        """Stop handing out a queue's jobs; they keep waiting and new ones queue up."""
        self._run(self._aio.pause(circle, topic))

    def resume(self, circle: str, topic: str) -> None:
        """Hand out a paused queue's jobs again."""
        self._run(self._aio.resume(circle, topic))

    def schedules(self) -> list[ScheduleView]:
        """The engine's schedules (periodic jobs), with their last and next fire."""
        return self._run(self._aio.schedules())

    def add_schedule(
        self,
        name: str,
        params: str,
        *,
        topic: str,
        cron: str = "",
        every: str = "",
        circle: str = "default",
        params_type: str = "heroscript",
        timeout: float = 60.0,
        tz: str = "UTC",
        missed: str = "latest",
    ) -> ScheduleView:
        """Add (or replace) a schedule: `cron="0 9 * * *"` or `every="10s"`, not both."""
        return self._run(
            self._aio.add_schedule(
                name,
                params,
                topic=topic,
                cron=cron,
                every=every,
                circle=circle,
                params_type=params_type,
                timeout=timeout,
                tz=tz,
                missed=missed,
            )
        )

    def pause_schedule(self, name: str) -> ScheduleView:
        """Stop a schedule firing (ScheduleNotFound when there is none of that name)."""
        return self._run(self._aio.pause_schedule(name))

    def resume_schedule(self, name: str) -> ScheduleView:
        """Fire a paused schedule again, from its next fire after now."""
        return self._run(self._aio.resume_schedule(name))

    def remove_schedule(self, name: str) -> None:
        """Remove a schedule added at run time."""
        self._run(self._aio.remove_schedule(name))
