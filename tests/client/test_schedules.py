"""Schedules through `heroagent.Client` and `heroagent schedule …`, against a served engine."""

from __future__ import annotations

import json

import pytest

from core.config import Config
from heroagent import Client, JobFilter, JobRefused, ScheduleNotFound
from tests.core.jobs.test_cli_and_restart import cli
from tests.core.test_serve import Serve
from tests.helpers import wait_for


def test_a_schedule_added_through_the_client_fires_and_is_managed(config: Config) -> None:
    with Client.from_config(config) as client:
        added = client.add_schedule("beat", "!!core.echo\n", topic="beat", every="1s")
        assert (added.every, added.source, added.paused) == ("1s", "runtime", False)
        assert added.next_fire > 0
        jobs = wait_for(lambda: client.jobs(JobFilter(topic="beat")), 10, "a job of the schedule")
        assert jobs[0].schedule == "beat"
        assert jobs[0].fire_time == int(jobs[0].fire_time)  # on a whole second
        assert client.pause_schedule("beat").paused
        assert not client.resume_schedule("beat").paused
        assert [s.name for s in client.schedules()] == ["beat"]
        client.remove_schedule("beat")
        assert client.schedules() == []
        with pytest.raises(ScheduleNotFound):
            client.pause_schedule("beat")
        with pytest.raises(JobRefused, match="exactly one of cron or every"):
            client.add_schedule("bad", "!!core.echo\n", topic="t")
        with pytest.raises(JobRefused, match="not a cron expression"):
            client.add_schedule("bad", "!!core.echo\n", topic="t", cron="every day")


def test_the_schedule_commands(served: Serve) -> None:
    made = cli(
        served,
        *("schedule", "add", "nightly", "-", "-t", "backup", "--cron", "0 2 * * *"),
        *("--tz", "Europe/Brussels", "--json"),
        stdin="!!core.echo\n",
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["tz"] == "Europe/Brussels"
    listed = cli(served, "schedule", "list", "--json")
    assert [s["name"] for s in json.loads(listed.stdout)] == ["nightly"]
    assert "nightly" in cli(served, "schedule", "list").stdout
    assert cli(served, "schedule", "pause", "nightly").stdout == "schedule nightly paused\n"
    assert cli(served, "schedule", "resume", "nightly").returncode == 0
    assert cli(served, "schedule", "remove", "nightly").returncode == 0
    missing = cli(served, "schedule", "remove", "nightly")
    assert missing.returncode == 1
    assert "no schedule named 'nightly'" in missing.stderr
