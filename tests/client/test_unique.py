"""Unique jobs and graphs through heroagent.Client and the CLI, from several real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.config import Config
from heroagent import Client
from tests.client.conftest import env_of
from tests.core.jobs.test_cli_and_restart import cli
from tests.core.test_serve import Serve

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, PER_PROCESS = 5, 10
# Each process connects, says it is ready, and submits its 10 at once when told to go:
# all 50 submits of one key race in the engine at the same time.
SCRIPT = """
import asyncio, json, sys
from heroagent import AsyncClient

PER_PROCESS = int(sys.argv[1])

async def main():
    async with AsyncClient() as client:
        await client.jobs(limit=1)  # connected and served: the race starts on "go"
        print("ready", flush=True)
        sys.stdin.readline()
        views = await asyncio.gather(*(
            client.submit("!!fake.sleep seconds:30\\n", topic="race", unique_key="nightly")
            for _ in range(PER_PROCESS)
        ))
    print(json.dumps([[v.job_id, v.duplicate] for v in views]), flush=True)

asyncio.run(main())
"""


def test_fifty_concurrent_submits_from_five_processes_make_one_job(
    served: Serve, config: Config
) -> None:
    env = {**os.environ, **env_of(served)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(PER_PROCESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        answers = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0
            answers += json.loads(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert len(answers) == PROCESSES * PER_PROCESS
    assert len({job_id for job_id, _ in answers}) == 1
    assert sorted(duplicate for _, duplicate in answers).count(False) == 1
    job_id = answers[0][0]
    with Client.from_config(config) as client:
        assert [j.job_id for j in client.jobs(limit=100) if j.topic == "race"] == [job_id]
        # Ending the holder gives the key up: the next submit makes a new job.
        client.cancel(job_id)
        client.wait(job_id, timeout=10)
        fresh = client.submit("!!fake.return_success\n", topic="race", unique_key="nightly")
        assert not fresh.duplicate
        assert fresh.job_id != job_id
        assert client.wait(fresh.job_id, timeout=10).status == "done"


def test_graph_and_unique_key_from_the_cli(served: Serve, tmp_path: Path) -> None:
    graph = tmp_path / "diamond.hero"
    graph.write_text(
        "!!job.define name:a topic:cli-graph\n!!core.echo message:a\n\n"
        "!!job.define name:b topic:cli-graph after:a\n!!core.echo message:b\n\n"
        "!!job.define name:c topic:cli-graph after:a\n!!core.echo message:c\n\n"
        "!!job.define name:d topic:cli-graph after:'b, c'\n!!core.echo message:d\n"
    )
    made = cli(served, "submit", "--graph", str(graph), "--wait", "--json")
    assert made.returncode == 0, made.stderr
    jobs = json.loads(made.stdout)
    assert [(j["name"], j["status"]) for j in jobs] == [
        ("a", "done"), ("b", "done"), ("c", "done"), ("d", "done")
    ]  # fmt: skip
    assert jobs[3]["depends_on"] == [jobs[1]["job_id"], jobs[2]["job_id"]]
    shown = cli(served, "job", str(jobs[3]["job_id"]))
    assert "depends_on" in shown.stdout
    graph.write_text("!!job.define name:x after:x\n!!core.echo\n")
    refused = cli(served, "submit", "--graph", str(graph))
    assert refused.returncode == 1
    assert "depends on itself" in refused.stderr

    args = ("submit", "-t", "cli-uniq", "--unique-key", "once", "--unique-for", "1m")
    first = cli(served, *args, stdin="!!core.echo message:x\n")
    again = cli(served, *args, stdin="!!core.echo message:x\n")
    assert first.returncode == again.returncode == 0, first.stderr
    assert "already holds unique key 'once'" in again.stdout
    after = cli(served, "submit", "-t", "cli-dep", "--after", "999999", stdin="!!core.echo\n")
    assert after.returncode == 1
    assert "no job with id 999999" in after.stderr
