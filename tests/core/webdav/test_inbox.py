"""The inbox over real WebDAV PUT (fast and slow) and with local file copies."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.api.wire import WIRE_FIELDS
from core.events.bus import EventBus
from core.webdav.inbox import Inbox
from tests.core.webdav.dav import RunningDav, dav_config
from tests.core.webdav.fake_jobs import FakeJob, FakeJobs
from tests.helpers import async_wait_for, wait_for

SCRIPT = b"!!fake.return_success\n    message: 'hello'\n"


class DavInbox:
    """A running WebDAV service and an inbox on the same loop and bus."""

    def __init__(self, base: Path, settle: float = 1.0) -> None:
        self.dav = RunningDav(dav_config(base))
        self.jobs = FakeJobs(self.dav.bus)
        self.inbox = Inbox(self.dav.root, self.dav.bus, self.jobs, settle=settle)
        self.dav.call(self.inbox.start())

    def close(self) -> None:
        try:
            self.dav.call(self.inbox.stop())
        finally:
            self.dav.close()


@pytest.fixture
def dav_inbox(short_tmp: Path) -> Iterator[DavInbox]:
    running = DavInbox(short_tmp)
    try:
        yield running
    finally:
        running.close()


def test_put_into_a_topic_runs_and_the_result_appears_within_2_s(dav_inbox: DavInbox) -> None:
    dav = dav_inbox.dav
    assert dav.request("MKCOL", "/inbox/default/").status == 201
    assert dav.request("MKCOL", "/inbox/default/demo/").status == 201
    started = time.monotonic()
    assert dav.request("PUT", "/inbox/default/demo/hello.hero", SCRIPT).status == 201
    result = dav.root / "inbox/default/demo/submitted/hello.1.result.json"
    wait_for(result.exists, 2.0, "the result file")
    assert time.monotonic() - started < 2.0
    outcome = json.loads(result.read_text())
    # The job in its one wire form, as the CLI and the HTTP API show it.
    assert set(outcome) == set(WIRE_FIELDS)
    assert {k: outcome[k] for k in ("job_id", "circle", "topic", "status", "result", "error")} == {
        "job_id": 1,
        "circle": "default",
        "topic": "demo",
        "status": "done",
        "result": f"ran {len(SCRIPT)} bytes",
        "error": "",
    }
    assert dav_inbox.jobs.calls == [("default", "demo", SCRIPT.decode())]
    assert not (dav.root / "inbox/default/demo/hello.hero").exists()
    assert (dav.root / "inbox/default/demo/submitted/hello.1.hero").read_bytes() == SCRIPT
    # The result can be read back over WebDAV too.
    got = dav.request("GET", "/inbox/default/demo/submitted/hello.1.result.json")
    assert json.loads(got.body)["status"] == "done"


def test_put_at_the_top_uses_the_default_circle_and_topic(dav_inbox: DavInbox) -> None:
    dav = dav_inbox.dav
    assert dav.request("PUT", "/inbox/top.hero", b"!!fake.return_error\n").status == 201
    result = dav.root / "inbox/submitted/top.1.result.json"
    wait_for(result.exists, 2.0, "the result file")
    outcome = json.loads(result.read_text())
    assert (outcome["circle"], outcome["topic"], outcome["status"]) == (
        "default",
        "default",
        "error",
    )
    assert outcome["error"] == "fake.return_error: asked to fail"


def test_bad_heroscript_gets_an_error_file_and_no_job(dav_inbox: DavInbox) -> None:
    dav = dav_inbox.dav
    assert dav.request("PUT", "/inbox/bad.hero", b"not heroscript\n").status == 201
    error = dav.root / "inbox/bad.error.txt"
    wait_for(error.exists, 2.0, "the error file")
    assert error.read_text() == "line 1, column 1: expected an action like !!actor.action\n"
    assert dav_inbox.jobs.calls == []
    assert (dav.root / "inbox/bad.hero").exists()
    # A fixed upload under the same name runs, and the stale error file goes.
    assert dav.request("PUT", "/inbox/bad.hero", SCRIPT).status == 204
    wait_for((dav.root / "inbox/submitted/bad.1.result.json").exists, 2.0, "the result")
    assert not error.exists()


def test_a_slow_put_is_submitted_only_when_complete(dav_inbox: DavInbox) -> None:
    dav = dav_inbox.dav
    body = SCRIPT + b"".join(b"    line%d: %d\n" % (i, i) for i in range(20))
    chunks = [body[i : i + 40] for i in range(0, len(body), 40)]
    conn = socket.create_connection(("127.0.0.1", dav.port))
    try:
        conn.sendall(
            b"PUT /inbox/slow.hero HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
            % len(body)
        )
        for index, chunk in enumerate(chunks[:-1]):
            conn.sendall(chunk)
            # The first pause is longer than the inbox's quiet period: only a finished PUT
            # may count as complete. The whole upload takes about 2.5 s.
            time.sleep(1.3 if index == 0 else 1.2 / len(chunks))
            assert dav_inbox.jobs.calls == []
            assert not (dav.root / "inbox/slow.hero").exists()
        conn.sendall(chunks[-1])
        assert conn.recv(100).startswith(b"HTTP/1.1 201")
    finally:
        conn.close()
    wait_for(lambda: dav_inbox.jobs.calls, 2.0, "the job")
    assert dav_inbox.jobs.calls == [("default", "default", body.decode())]
    wait_for((dav.root / "inbox/submitted/slow.1.result.json").exists, 2.0, "the result")


def test_an_abandoned_put_makes_no_job(dav_inbox: DavInbox) -> None:
    dav = dav_inbox.dav
    conn = socket.create_connection(("127.0.0.1", dav.port))
    conn.sendall(b"PUT /inbox/cut.hero HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n")
    conn.sendall(SCRIPT)  # a valid script, but only part of the announced body
    time.sleep(0.2)
    conn.close()
    # Longer than the quiet period, so a truncated file left behind would have run.
    time.sleep(1.5)
    assert dav_inbox.jobs.calls == []
    assert sorted(p.name for p in (dav.root / "inbox").iterdir()) == []


@pytest.fixture
async def local_inbox(short_tmp: Path) -> Iterator[tuple[Inbox, FakeJobs, Path]]:  # type: ignore[misc]
    bus = EventBus()
    jobs = FakeJobs(bus)
    inbox = Inbox(short_tmp, bus, jobs, settle=0.5)
    await inbox.start()
    try:
        yield inbox, jobs, short_tmp / "inbox"
    finally:
        await inbox.stop()


async def test_a_local_copy_waits_for_the_writer_to_go_quiet(
    local_inbox: tuple[Inbox, FakeJobs, Path],
) -> None:
    _, jobs, inbox_dir = local_inbox
    topic = inbox_dir / "ops" / "deploy"
    topic.mkdir(parents=True)
    target = topic / "job.hero"
    body = SCRIPT + b"".join(b"    key%d: %d\n" % (i, i) for i in range(10))
    with target.open("wb") as out:
        for i in range(0, len(body), 30):
            out.write(body[i : i + 30])
            out.flush()
            await asyncio.sleep(0.2)  # shorter than the quiet period
            assert jobs.calls == []
    await async_wait_for(lambda: jobs.calls, 3.0, "the job")
    assert jobs.calls == [("ops", "deploy", body.decode())]
    await async_wait_for((topic / "submitted" / "job.1.result.json").exists, 2.0, "the result file")


async def test_files_already_there_at_start_are_picked_up(short_tmp: Path) -> None:
    (short_tmp / "inbox").mkdir()
    (short_tmp / "inbox" / "early.hero").write_bytes(SCRIPT)
    bus = EventBus()
    jobs = FakeJobs(bus)
    inbox = Inbox(short_tmp, bus, jobs, settle=0.2)
    await inbox.start()
    try:
        await async_wait_for(
            (short_tmp / "inbox/submitted/early.1.result.json").exists, 3.0, "the result"
        )
    finally:
        await inbox.stop()


async def test_ignored_and_misplaced_files(local_inbox: tuple[Inbox, FakeJobs, Path]) -> None:
    _, jobs, inbox_dir = local_inbox
    (inbox_dir / "circle-only").mkdir()
    (inbox_dir / "circle-only" / "lost.hero").write_bytes(SCRIPT)
    (inbox_dir / ".hidden.hero").write_bytes(SCRIPT)
    (inbox_dir / "._mac.hero").write_bytes(SCRIPT)
    (inbox_dir / "notes.txt").write_bytes(SCRIPT)
    (inbox_dir / "submitted").mkdir()
    (inbox_dir / "submitted" / "old.hero").write_bytes(SCRIPT)
    error = inbox_dir / "circle-only" / "lost.error.txt"
    await async_wait_for(error.exists, 3.0, "the misplaced file's error")
    assert "inbox/<circle>/<topic>/" in error.read_text()
    (inbox_dir / "bad name!").mkdir()
    (inbox_dir / "bad name!" / "t").mkdir()
    (inbox_dir / "bad name!" / "t" / "x.hero").write_bytes(SCRIPT)
    await async_wait_for((inbox_dir / "bad name!" / "t" / "x.error.txt").exists, 3.0, "error")
    assert jobs.calls == []


async def test_results_of_jobs_that_ended_while_stopped_are_written_at_start(
    short_tmp: Path,
) -> None:
    submitted = short_tmp / "inbox" / "c1" / "t1" / "submitted"
    submitted.mkdir(parents=True)
    (submitted / "late.7.hero").write_bytes(SCRIPT)
    bus = EventBus()
    jobs = FakeJobs(bus)
    jobs.jobs[7] = FakeJob(7, "c1", "t1", SCRIPT.decode(), "heroscript", "done", "42")
    inbox = Inbox(short_tmp, bus, jobs)
    await inbox.start()
    try:
        result = submitted / "late.7.result.json"
        await async_wait_for(result.exists, 2.0, "the recovered result")
        outcome = json.loads(result.read_text())
        assert (outcome["circle"], outcome["topic"], outcome["result"]) == ("c1", "t1", "42")
    finally:
        await inbox.stop()


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("a.hero", ("default", "default")),
        ("c1/t1/a.hero", ("c1", "t1")),
        ("c1/t1/submitted/a.3.hero", None),
        ("submitted/a.3.hero", None),
        (".a.hero", None),
        ("._a.hero", None),
        ("c1/t1/.heroagent-upload-ab12-a.hero", None),
        ("a.txt", None),
        ("c1/.t/a.hero", None),
        ("c1/a.hero", "put .hero files in inbox/"),
        ("c1/t1/x/a.hero", "put .hero files in inbox/"),
        ("c 1/t1/a.hero", "circle and topic names use"),
    ],
)
def test_where_files_belong(relative: str, expected: object) -> None:
    from core.webdav.inbox_layout import place

    found = place(Path("/r/inbox"), Path("/r/inbox") / relative)
    if isinstance(expected, str):
        assert isinstance(found, str)
        assert found.startswith(expected)
    else:
        assert found == expected
