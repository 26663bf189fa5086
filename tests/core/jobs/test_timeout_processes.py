"""A job that times out while its action runs child processes leaves none behind."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

from core.config import Config
from core.engine import Engine
from tests.helpers import async_wait_for, wait_job_ended


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


async def test_timed_out_shell_job_leaves_no_process(engine_config: Config) -> None:
    config = replace(
        engine_config,
        enable_webdav=False,
        enable_ui=False,
        actors=replace(engine_config.actors, enable_shell=True),
    )
    # A duration no other process on the machine uses marks the children as ours.
    marker = f"{secrets.randbelow(10**6) + 10**6}.25"
    # A grandchild too: the shell starts one sleep in the background, then another.
    script = f"!!shell.run cmd:'sleep {marker} & sleep {marker}; wait'\n"
    async with Engine(config) as engine:
        job = await engine.jobs.create_job("t", script, timeout=1)
        # The check below can only fail if it can see the children: see them first.
        await async_wait_for(lambda: processes_with(marker), 10, "the job's children")
        final = await wait_job_ended(engine, job.job_id)
        assert final.status == "error"
        assert final.error == "timeout after 1s"
        await async_wait_for(lambda: not processes_with(marker), 5, "the children to go")
