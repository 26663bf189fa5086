"""`heroagent jobs purge`, `heroagent dead purge` and `Client.purge` against a served engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from core.config import Config
from heroagent import Client, JobFilter, JobNotFound, JobRefused, JobSpec
from tests.core.jobs.test_cli_and_restart import cli
from tests.core.test_serve import Serve


def _made(served: Serve, topic: str, params: str) -> int:
    made = cli(served, "submit", "-t", topic, "--wait", "--json", stdin=params)
    return int(json.loads(made.stdout)["job_id"])


def test_jobs_purge_and_dead_purge(served: Serve) -> None:
    done = [_made(served, "cli-purge", "!!core.echo message:x\n") for _ in range(3)]
    dead = _made(served, "cli-purge", "!!fake.return_error message:boom\n")

    unasked = cli(served, "jobs", "purge", "-t", "cli-purge", "--status", "done")
    assert unasked.returncode == 1
    assert "needs --yes" in unasked.stderr
    live = cli(served, "jobs", "purge", "--status", "active", "--yes")
    assert live.returncode == 1
    assert "has not ended" in live.stderr
    bad = cli(served, "jobs", "purge", "--before", "soonish", "--yes")
    assert bad.returncode == 1
    assert "neither an age" in bad.stderr
    young = cli(served, "jobs", "purge", "-t", "cli-purge", "--status", "done", "--before",
                "1h", "--yes")  # fmt: skip
    assert (young.returncode, young.stdout) == (0, "0 jobs purged\n"), young.stderr

    purged = cli(served, "jobs", "purge", "-t", "cli-purge", "--status", "done", "--yes")
    assert (purged.returncode, purged.stdout) == (0, "3 jobs purged\n"), purged.stderr
    listed = json.loads(cli(served, "jobs", "-t", "cli-purge", "--json").stdout)
    assert [j["job_id"] for j in listed] == [dead]
    gone = cli(served, "job", str(done[0]))
    assert gone.returncode == 1
    assert f"no job with id {done[0]}" in gone.stderr

    letters = cli(served, "dead", "purge", "-t", "cli-purge", "--yes")
    assert (letters.returncode, letters.stdout) == (0, "1 jobs purged\n"), letters.stderr
    assert json.loads(cli(served, "dead", "-t", "cli-purge", "--json").stdout) == []


def test_jobs_purge_asks_on_a_terminal(served: Serve) -> None:
    job = _made(served, "cli-asked", "!!core.echo message:x\n")
    main, other = os.openpty()
    # The answer waits in the terminal's input before the prompt is shown.
    os.write(main, b"n\n")
    try:
        asked = subprocess.run(
            [
                *(sys.executable, "-m", "heroagent_tui", "--config", os.devnull),
                *("--data-dir", str(served.data), "--redis-port", str(served.port)),
                *("jobs", "purge", "-t", "cli-asked"),
            ],
            stdin=other,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **served.env},
        )
    finally:
        os.close(main)
        os.close(other)
    assert asked.returncode == 1, asked.stderr
    assert "Delete done and error jobs from the history, for good?" in asked.stdout
    assert json.loads(cli(served, "job", str(job), "--json").stdout)["status"] == "done"


def test_client_purge(config: Config) -> None:
    with Client.from_config(config) as client:
        made = client.submit_many([JobSpec("!!core.echo message:x\n", "client-purge")] * 5)
        ended = client.wait_many([j.job_id for j in made], timeout=30)
        assert {j.status for j in ended} == {"done"}
        steps: list[int] = []
        flt = JobFilter(topic="client-purge")
        assert client.purge(flt, before=time.time() - 3600) == 0
        assert client.purge(flt, keep=2, progress=steps.append) == 3
        assert steps == [3]
        assert [j.job_id for j in client.jobs(flt)] == [made[-1].job_id, made[-2].job_id]
        with pytest.raises(JobNotFound):
            client.get(made[0].job_id)
        with pytest.raises(JobRefused, match="not ended"):
            client.purge(JobFilter(status="new"))
