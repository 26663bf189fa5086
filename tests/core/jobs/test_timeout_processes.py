"""A job that times out while its action runs child processes leaves none behind."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from pathlib import Path

from core.config import Config
from core.engine import Engine
from core.jobs import JobStatus


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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        # The check below can only fail if it can see the children: see them first.
        while not processes_with(marker):
            assert loop.time() < deadline, "the job's children never showed up"
            await asyncio.sleep(0.01)
        while not (await engine.jobs.stored_job(job.job_id)).status.ended:
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        final = await engine.jobs.get_job(job.job_id)
        assert final.status is JobStatus.ERROR
        assert final.error == "timeout after 1s"
        deadline = loop.time() + 5
        while processes_with(marker):
            assert loop.time() < deadline, f"left behind: {processes_with(marker)}"
            await asyncio.sleep(0.02)
