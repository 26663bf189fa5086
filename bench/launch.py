"""How benchmarks and tests start `heroagent` from this checkout and stop child processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def heroagent_argv(data: Path, *args: str) -> list[str]:
    """`heroagent` from this checkout, with no user config and its own data dir."""
    return [
        *(sys.executable, "-m", "heroagent_tui", "--config", os.devnull),
        *("--data-dir", str(data), *args),
    ]


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM a child and wait for it; SIGKILL it if it has not ended after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)
