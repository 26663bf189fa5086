"""`heroagent submit` with several files and --each-line: one batch, through heroagent.Client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.launch import heroagent_argv
from tests.core.jobs.test_cli_and_restart import cli, submitted
from tests.core.test_serve import Serve


def test_several_files_are_one_batch(served: Serve, tmp_path: Path) -> None:
    first, second = tmp_path / "a.hero", tmp_path / "b.hero"
    first.write_text("!!core.echo message:a\n")
    second.write_text("!!core.echo message:b\n")
    jobs = submitted(served, str(first), str(second), "-t", "files", "--wait")
    assert [(j["params"], j["status"]) for j in jobs] == [
        ("!!core.echo message:a\n", "done"),
        ("!!core.echo message:b\n", "done"),
    ]

    second.write_text("!!a.b.c x:1\n")
    refused = cli(served, "submit", str(first), str(second), "-t", "files")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"heroagent: {second}: line 1, col 3:")
    listed = json.loads(cli(served, "jobs", "-t", "files", "--json").stdout)
    assert len(listed) == 2  # the refused batch added none


def test_each_line_of_stdin_is_a_job(served: Serve) -> None:
    lines = "!!core.echo message:one\n\n!!core.echo message:two\n!!core.echo message:three\n"
    made = submitted(served, "--each-line", "-t", "lines", stdin=lines)
    assert [j["params"] for j in made] == [
        "!!core.echo message:one\n",
        "!!core.echo message:two\n",
        "!!core.echo message:three\n",
    ]
    bad = "!!core.echo message:fine\n!!core.echo message:fine\n!!a.b.c x:1\n"
    refused = cli(served, "submit", "--each-line", "-t", "lines", stdin=bad)
    assert refused.returncode == 1
    assert refused.stderr.startswith("heroagent: stdin line 3: line 1, col 3:")
    assert len(json.loads(cli(served, "jobs", "-t", "lines", "--json").stdout)) == 3
    empty = cli(served, "submit", "--each-line", stdin="\n\n")
    assert (empty.returncode, empty.stderr.strip()) == (1, "heroagent: nothing to submit")


def test_delay_at_retries_and_dead_letters_from_the_cli(served: Serve) -> None:
    job = submitted(served, "-t", "cli-timed", "--delay", "0.3s", "--wait",
                    stdin="!!core.echo message:later\n")  # fmt: skip
    assert job["status"] == "done"
    assert job["run_at"] > 0
    assert job["time_start"] >= job["run_at"]
    later = cli(served, "submit", "-t", "cli-at", "--at", "2999-12-24T08:00", "--json",
                stdin="!!core.echo message:far\n")  # fmt: skip
    assert json.loads(later.stdout)["status"] == "scheduled"
    bad = cli(served, "submit", "--delay", "soon", stdin="!!core.echo message:x\n")
    assert bad.returncode == 1
    assert "not a duration" in bad.stderr
    failing = cli(served, "submit", "-t", "cli-dead", "--retries", "1", "--backoff-base", "0.05",
                  "--wait", stdin="!!fake.return_error message:boom\n")  # fmt: skip
    assert failing.returncode == 1
    dead = json.loads(cli(served, "dead", "-t", "cli-dead", "--json").stdout)
    assert [(j["attempts"], j["error_kind"]) for j in dead] == [(2, "failed")]
    table = cli(served, "dead", "-t", "cli-dead")
    assert "failed" in table.stdout
    back = cli(served, "dead", "requeue", "--all", "-t", "cli-dead", "--json")
    assert back.returncode == 0, back.stderr
    assert [j["job_id"] for j in json.loads(back.stdout)] == [dead[0]["job_id"]]
    picky = cli(served, "submit", "-t", "cli-dead", "--retries", "3", "--retry-on", "timeout",
                "--wait", stdin="!!fake.return_error message:boom\n")  # fmt: skip
    assert picky.returncode == 1
    wrong = cli(served, "submit", "--retry-on", "cancelled", stdin="!!core.echo message:x\n")
    assert wrong.returncode == 1
    assert "cannot be retried" in wrong.stderr
    neither = cli(served, "dead", "requeue")
    assert neither.returncode == 1


def test_priority_and_limits_from_the_cli(served: Serve) -> None:
    made = cli(served, "submit", "-t", "cli-prio", "-p", "7", "--json", stdin="!!core.echo\n")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["priority"] == 7
    refused = cli(served, "submit", "-t", "cli-prio", "-p", "10", stdin="!!core.echo\n")
    assert refused.returncode == 2  # the option's own range check
    set_both = cli(served, "limits", "set", "cli-capped", "--max-active", "2", "--rate", "20/s")
    assert set_both.returncode == 0, set_both.stderr
    assert set_both.stdout.strip() == "default/cli-capped: max_active 2, 20/s"
    # A limit not given stays as it was; none lifts one.
    kept = cli(served, "limits", "set", "default/cli-capped", "--rate", "none", "--json")
    assert (json.loads(kept.stdout)["max_active"], json.loads(kept.stdout)["rate"]) == (2, "")
    listed = json.loads(cli(served, "limits", "--json").stdout)
    assert [(v["topic"], v["max_active"]) for v in listed] == [("cli-capped", 2)]
    table = cli(served, "limits")
    assert "default/cli-capped" in table.stdout
    bad = cli(served, "limits", "set", "cli-capped", "--rate", "fast")
    assert bad.returncode == 1
    assert "rate 'fast' is not of the form" in bad.stderr
    lifted = cli(served, "limits", "set", "cli-capped", "--max-active", "none")
    assert lifted.stdout.strip() == "default/cli-capped: no limits"


def test_a_reader_that_goes_away_ends_the_submit_quietly(served: Serve) -> None:
    # Over 64 KiB of JSON: more than the pipe holds, so the write after the close fails.
    lines = "!!core.echo message:x\n" * 300
    argv = heroagent_argv(served.data, "--redis-port", str(served.port), "submit")
    with subprocess.Popen(
        [*argv, "--each-line", "-t", "cli-pipe", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **served.env},
    ) as proc:  # fmt: skip
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdin.write(lines.encode())
        proc.stdin.close()
        assert proc.stdout.read(10) == b'[{"job_id"'
        proc.stdout.close()
        assert proc.wait(60) == 1  # as click ends on a broken pipe
        assert proc.stderr.read() == b""


def test_the_typer_command_submits_as_the_fast_path_does(served: Serve) -> None:
    # `heroagent submit` runs without typer; the typer command (what `--help` and the
    # other routes reach) must submit the same way.
    argv = ["--redis-port", str(served.port), "--data-dir", str(served.data), "submit", "-"]
    code = (
        "import sys\n"
        "from heroagent_tui.cli import app\n"
        f"app({[*argv, '-t', 'cli-typer', '-p', '3', '--json']!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input="!!core.echo message:typer\n", capture_output=True,
        text=True, timeout=60, env={**os.environ, **served.env, "HEROAGENT_CONFIG": os.devnull},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["topic"], job["priority"], job["params"]) == (
        "cli-typer",
        3,
        "!!core.echo message:typer\n",
    )


def test_pause_cancel_requeue_and_resume_from_the_cli(served: Serve) -> None:
    paused = cli(served, "pause", "cli-held")
    assert (paused.returncode, paused.stdout) == (0, "default/cli-held paused\n"), paused.stderr
    job = submitted(served, "-t", "cli-held", stdin="!!core.echo message:held\n")
    cancelled = cli(served, "cancel", str(job["job_id"]))
    assert cancelled.stdout == f"job {job['job_id']} is error\n", cancelled.stderr
    requeued = json.loads(cli(served, "requeue", str(job["job_id"]), "--json").stdout)
    assert (requeued["job_id"], requeued["status"]) == (job["job_id"], "new")
    resumed = cli(served, "resume", "default/cli-held")
    assert (resumed.returncode, resumed.stdout) == (0, "default/cli-held resumed\n")
    missing = cli(served, "cancel", "999999")
    assert missing.returncode == 1
