"""The HeroScript inbox: a complete `*.hero` file under `<root>/inbox/` becomes a job.

Rules (docs/webdav.md says the same for users):

- `inbox/<name>.hero` runs in circle `default`, topic `default`;
  `inbox/<circle>/<topic>/<name>.hero` in that circle and topic. Hidden files
  (`.name`, macOS `._name`) and anything under a `submitted/` folder are ignored.
- A file is complete when a WebDAV PUT of it has finished (the service's PUT writes
  beside the target and renames, so a partial upload never has the final name), or,
  for files written any other way, once its size and mtime have not changed for
  `settle` seconds. A local writer that may pause longer should write under a hidden
  name and rename.
- Accepted: the file moves to `submitted/<name>.<id>.hero` beside it; when the job
  ends, `submitted/<name>.<id>.result.json` appears: the job in its wire form.
- A file over the params size limit is rejected before it is read.
- Rejected by the parser: `<name>.error.txt` beside it holds the message, no job is
  made, and the file stays until it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from core.api import job_wire
from core.events import JobStateChanged, LogEmitted, WebDAVRequest
from core.events.bus import EventBus, Subscription
from core.services import Service
from core.webdav.inbox_layout import (
    INBOX_DIR,
    SUBMITTED_DIR,
    SUFFIX,
    error_file,
    parse_submitted,
    place,
    result_file,
    stem,
    submitted_file,
    write_atomic,
)
from core.webdav.jobs import JobSubmitter

SETTLE_SECONDS = 1.0
RETRY_SECONDS = 5.0
ENDED = frozenset({"done", "error"})

log = logging.getLogger("core.inbox")


@dataclass
class _Candidate:
    signature: tuple[int, int]
    quiet_since: float
    complete: bool = False


@dataclass(frozen=True)
class _Submitted:
    path: Path
    circle: str
    topic: str


class Inbox(Service):
    """Watches `<root>/inbox` and submits complete `.hero` files through the engine API."""

    name = "inbox"

    def __init__(
        self,
        root: Path,
        bus: EventBus,
        submitter: JobSubmitter,
        *,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        super().__init__(bus)
        self.root = root
        self.dir = root / INBOX_DIR
        self.submitter = submitter
        self.settle = settle
        self._candidates: dict[Path, _Candidate] = {}
        self._rejected: dict[Path, tuple[int, int]] = {}
        self._pending: dict[int, _Submitted] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def address(self) -> str:
        """The folder it watches."""
        return str(self.dir)

    async def _start(self) -> None:
        """Create the inbox folder, pick up what is already there, and start watching."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._subscription = self.bus.subscribe()
        self._tasks = [
            asyncio.create_task(self._watch(), name="inbox-watch"),
            asyncio.create_task(self._listen(self._subscription), name="inbox-events"),
            asyncio.create_task(self._work(), name="inbox-submit"),
        ]
        # One turn of the loop lets the watch task set up its inotify watches (awatch does
        # that before its first await); only then is a scan sure to miss nothing.
        await asyncio.sleep(0)
        self._scan(self.dir)
        await self._recover()
        self._wake.set()

    async def _stop(self) -> None:
        """Stop watching; jobs still running get their result file at the next start."""
        self._stopping.set()
        if self._subscription is not None:
            self._subscription.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _note(self, path: Path, *, complete: bool = False) -> None:
        """Remember a file that may become a job once it is complete."""
        if place(self.dir, path) is None:
            return
        try:
            info = path.stat()
        except OSError:
            return
        signature = (info.st_size, info.st_mtime_ns)
        if self._rejected.get(path) == signature:
            return
        candidate = self._candidates.get(path)
        if candidate is None or candidate.signature != signature:
            candidate = _Candidate(signature, time.monotonic())
            self._candidates[path] = candidate
        candidate.complete = candidate.complete or complete
        self._wake.set()

    # -- the three tasks -------------------------------------------------------------

    def _scan(self, directory: Path) -> None:
        for path in directory.rglob(f"*{SUFFIX}"):
            self._note(path)

    async def _watch(self) -> None:
        def interesting(change: Change, raw: str) -> bool:
            if change is Change.deleted:
                return False
            return raw.endswith(SUFFIX) or (change is Change.added and os.path.isdir(raw))

        # debounce: watchfiles' default groups changes for 1.6 s, too slow for a 2 s promise.
        async for changes in awatch(
            self.dir, watch_filter=interesting, debounce=50, step=20, stop_event=self._stopping
        ):
            for _, raw in changes:
                self._changed(Path(raw))

    def _changed(self, path: Path) -> None:
        if path.is_dir():
            # Files made in a new folder before its watch was added raise no event.
            self._scan(path)
        else:
            self._note(path)

    async def _listen(self, subscription: Subscription) -> None:
        async for event in subscription:
            if isinstance(event, WebDAVRequest):
                if event.method == "PUT" and 200 <= event.status < 300:
                    self._note(self.root / event.path.lstrip("/"), complete=True)
            elif isinstance(event, JobStateChanged) and event.status in ENDED:
                await self._finish(event.job_id)

    async def _work(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            next_due: float | None = None
            for path, candidate in list(self._candidates.items()):
                try:
                    info = path.stat()
                except OSError:
                    del self._candidates[path]
                    continue
                signature = (info.st_size, info.st_mtime_ns)
                if signature != candidate.signature:
                    # Changed since it was noted: whatever made it complete no longer holds.
                    candidate.signature, candidate.quiet_since = signature, now
                    candidate.complete = False
                due = candidate.quiet_since + self.settle
                if candidate.complete or due <= now:
                    del self._candidates[path]
                    await self._submit(path)
                else:
                    next_due = due if next_due is None else min(next_due, due)
            timeout = None if next_due is None else max(0.0, next_due - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    # -- submitting and finishing ----------------------------------------------------

    async def _submit(self, path: Path) -> None:
        found = place(self.dir, path)
        if found is None:
            return
        if isinstance(found, str):
            self._reject(path, found)
            return
        circle, topic = found
        claim = self._claim(path)
        if claim is None:
            return
        try:
            size = claim.stat().st_size
            limit = self.submitter.max_params_bytes
            if size > limit:
                raise ValueError(f"the file is {size} bytes; the params limit is {limit} bytes")
            text = await asyncio.to_thread(claim.read_text, encoding="utf-8")
            job = await self.submitter.submit(
                text, topic=topic, circle=circle, params_type="heroscript"
            )
            job_id = job.job_id
        except ValueError as exc:  # the parser's error; UnicodeDecodeError is one too
            self._restore(claim, path)
            self._reject(path, str(exc))
            return
        except Exception as exc:
            self._restore(claim, path)
            self._emit(logging.ERROR, f"{self._rel(path)}: cannot submit, will retry: {exc}")
            self._retry_later(path)
            return
        final = submitted_file(path, job_id)
        os.replace(claim, final)
        error_file(path).unlink(missing_ok=True)
        self._pending[job_id] = _Submitted(final, circle, topic)
        self._emit(logging.INFO, f"{self._rel(path)} became job {job_id} ({circle}/{topic})")
        # The job may have ended before its id was known here; its event is then gone.
        await self._finish(job_id)

    def _claim(self, path: Path) -> Path | None:
        """Move the file aside before the job exists.

        A new upload under the same name while create_job runs is then a new file for a
        new job, not content swapped under this one.
        """
        claim = path.parent / SUBMITTED_DIR / f".{stem(path)}.claim"
        claim.parent.mkdir(exist_ok=True)
        try:
            os.replace(path, claim)
        except FileNotFoundError:
            return None
        return claim

    def _retry_later(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            info = path.stat()
            quiet_since = time.monotonic() + RETRY_SECONDS - self.settle
            self._candidates[path] = _Candidate((info.st_size, info.st_mtime_ns), quiet_since)

    def _restore(self, claim: Path, path: Path) -> None:
        if path.exists():
            claim.unlink(missing_ok=True)  # a newer upload took the name meanwhile
        else:
            os.replace(claim, path)

    def _reject(self, path: Path, message: str) -> None:
        write_atomic(error_file(path), message.rstrip("\n") + "\n")
        with contextlib.suppress(OSError):
            info = path.stat()
            self._rejected[path] = (info.st_size, info.st_mtime_ns)
        self._emit(logging.WARNING, f"{self._rel(path)} rejected: {message}")

    async def _finish(self, job_id: int) -> None:
        """Write the result file of a submitted job if it has ended."""
        submitted = self._pending.get(job_id)
        if submitted is None:
            return
        try:
            job = await self.submitter.job(job_id)
        except Exception as exc:
            self._emit(logging.WARNING, f"job {job_id}: cannot read its outcome: {exc}")
            return
        if not job.ended or self._pending.pop(job_id, None) is None:
            return
        text = json.dumps(job_wire(job), indent=2) + "\n"
        write_atomic(result_file(submitted.path), text)

    async def _recover(self) -> None:
        """Find submitted files without a result (the engine stopped before their job ended)."""
        for path in self.dir.rglob(f"{SUBMITTED_DIR}/*{SUFFIX}"):
            parsed = parse_submitted(self.dir, path)
            if parsed is None or result_file(path).exists():
                continue
            job_id, circle, topic = parsed
            self._pending[job_id] = _Submitted(path, circle, topic)
            await self._finish(job_id)

    def _rel(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.relative_to(self.root))
        return str(path)

    def _emit(self, level: int, message: str) -> None:
        log.log(level, "%s", message)
        self.bus.publish(
            LogEmitted(source="inbox", level=logging.getLevelName(level).lower(), message=message)
        )
