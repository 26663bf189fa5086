"""`heroagent submit|job|jobs` against a served engine, and an engine killed mid-work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.launch import heroagent_argv
from tests.core.test_serve import Serve, serving
from tests.helpers import pid_running, wait_for

SUBMIT_SIX = """
import asyncio, json, sys
import redis.asyncio as aioredis
from core.remote import call

async def main():
    redis = aioredis.Redis(port=int(sys.argv[1]), password=sys.argv[2])
    args = {"topic": "t", "params": "!!fake.sleep seconds:3\\n"}
    print(json.dumps([(await call(redis, "submit", args))["job_id"] for _ in range(6)]))
    await redis.aclose()

asyncio.run(main())
"""


# What these engines are asked goes over Redis alone: no WebDAV, no HTTP UI to start.
CLI_ONLY = {"HEROAGENT_ENABLE_WEBDAV": "false", "HEROAGENT_ENABLE_UI": "false"}


def cli(serve: Serve, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        heroagent_argv(serve.data, "--redis-port", str(serve.port), *args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **serve.env},
    )


def submitted(serve: Serve, *args: str, stdin: str = "") -> Any:
    """`heroagent submit *args --json`, which must succeed: what it printed."""
    made = cli(serve, "submit", *args, "--json", stdin=stdin)
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)


@pytest.fixture
def served(short_tmp: Path) -> Iterator[Serve]:
    env = {**CLI_ONLY, "HEROAGENT_JOBS_LEASE_SECONDS": "1"}
    with serving(short_tmp / "data", env=env) as server:
        yield server


def test_submit_wait_job_and_jobs(served: Serve) -> None:
    job = submitted(served, "-", "--topic", "demo", "--log", "--wait",
                    stdin="!!core.echo message:hello\n")  # fmt: skip
    assert job["status"] == "done"
    assert "hello" in job["log_lines"]

    failed = cli(served, "submit", "-", "--wait", stdin="!!fake.return_error message:boom\n")
    assert failed.returncode == 1
    assert "fake.return_error: boom" in failed.stdout

    history = json.loads(cli(served, "job", str(job["job_id"]), "--history", "--json").stdout)
    assert [v["status"] for v in history] == ["new", "active", "done"]
    listed = json.loads(cli(served, "jobs", "--status", "done", "--json").stdout)
    assert [j["job_id"] for j in listed] == [job["job_id"]]

    missing = cli(served, "job", "424242")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "heroagent: no job with id 424242"
    bad = cli(served, "submit", "-", stdin="!!a.b.c x:1\n")
    assert bad.returncode == 1
    assert bad.stderr.startswith("heroagent: line 1, col 3:")


def test_a_url_without_the_password_says_so_not_that_the_engine_is_down(served: Serve) -> None:
    sock = served.data / "run" / "valkey.sock"
    none = cli(served, "jobs", "--redis-url", f"unix://{sock}")
    assert none.returncode == 3
    assert "asks for a password and was given none (NOAUTH" in none.stderr
    assert "unix://:PASSWORD@/path/to.sock" in none.stderr
    assert "is heroagent running" not in none.stderr
    wrong = cli(served, "jobs", "--redis-url", f"unix://:wrong@{sock}")
    assert wrong.returncode == 3
    assert "asks for a password and was given a wrong one" in wrong.stderr
    password = (served.data / "redis" / "password").read_text().strip()
    right = cli(served, "jobs", "--json", "--redis-url", f"unix://:{password}@{sock}")
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout) == []


def test_no_engine_is_a_clear_error(short_tmp: Path) -> None:
    server = Serve(short_tmp / "data", env=CLI_ONLY)
    server.wait_ready()
    # Stop the engine, then ask: the server is gone too, so the error names the server.
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(10)
    result = cli(server, "jobs")
    server.close()
    assert result.returncode == 3
    assert result.stderr.startswith("heroagent: cannot reach the engine's Redis server")
    assert "Traceback" not in result.stderr


def test_engine_sigkilled_with_jobs_queued_and_running_then_restarted(short_tmp: Path) -> None:
    data = short_tmp / "data"
    env = {**CLI_ONLY, "HEROAGENT_JOBS_LEASE_SECONDS": "1", "HEROAGENT_JOBS_WORKER_COUNT": "2"}
    first = Serve(data, env=env)
    server = None
    try:
        first.wait_ready()
        server = first.server_pid()
        # One process submits all six over the CLI's request channel: six CLI starts can
        # take longer than a job runs on a loaded machine, and then none would still wait.
        made = subprocess.run(
            [sys.executable, "-c", SUBMIT_SIX, str(first.port), first.password],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **first.env},
        )
        assert made.returncode == 0, made.stderr
        ids = json.loads(made.stdout)
        states = {j["status"] for j in json.loads(cli(first, "jobs", "--json").stdout)}
        assert {"active", "new"} <= states, states
        # Kill while two run and the rest wait; the server dies with the engine.
        first.proc.kill()
        first.proc.wait(10)
    finally:
        first.close()
        if server is not None:
            # Also when an assertion above failed: no server of this test outlives it.
            wait_for(lambda: not pid_running(server), 10, "the old server to exit")

    # A slot for every job after the restart: what is checked is that each one runs
    # again, not the queueing (six 3 s sleeps on two slots would take 9 s).
    with serving(data, env={**env, "HEROAGENT_JOBS_WORKER_COUNT": "6"}) as second:

        def all_done() -> bool:
            found = cli(second, "jobs", "--limit", "100", "--json")
            rows = json.loads(found.stdout) if found.returncode == 0 else []
            return sorted(j["job_id"] for j in rows if j["status"] == "done") == sorted(ids)

        wait_for(all_done, 60, "every job to complete after the restart")
