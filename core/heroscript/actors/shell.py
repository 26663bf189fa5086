"""``shell.run``: run a command in its own process group, killed whole on cancel.

Off unless ``actors.enable_shell`` is set: a script that can run commands can
do anything the HeroAgent user can.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

from core.heroscript.context import ActionContext
from core.heroscript.errors import ActionFailed

_GRACE_SECONDS = 2.0
_TAIL = 2000


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ShellActor:
    """Run shell commands (enabled by config ``actors.enable_shell``)."""

    async def run(
        self,
        ctx: ActionContext,
        cmd: str,
        cwd: str | None = None,
        check: bool = True,
    ) -> dict[str, Any]:
        """Run ``cmd`` with ``/bin/sh`` and return its exit code and output.

        The command gets its own process group; on cancellation or timeout the
        whole group gets SIGTERM, then SIGKILL, so no child outlives the job.

        Args:
            ctx: the run's context.
            cmd: the command line.
            cwd: the working folder.
            check: fail the action when the exit code is not 0.
        """
        proc = await asyncio.create_subprocess_shell(
            cmd,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        ctx.log(f"shell.run: started pid {proc.pid}: {cmd}")
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(proc))
            raise
        stderr = err.decode(errors="replace")[-_TAIL:]
        if check and proc.returncode != 0:
            raise ActionFailed(f"exit code {proc.returncode}: {stderr.strip()[-500:]}")
        return {
            "exit_code": proc.returncode,
            "stdout": out.decode(errors="replace")[-_TAIL:],
            "stderr": stderr,
        }

    @staticmethod
    async def _stop(proc: asyncio.subprocess.Process) -> None:
        # The session id is the pid of the shell, which leads the new group.
        _kill_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), _GRACE_SECONDS)
        # Children may ignore SIGTERM or outlive the shell: finish the whole group.
        _kill_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), _GRACE_SECONDS)
