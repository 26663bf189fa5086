"""How benchmarks and tests start `heroagent` from this checkout and stop child processes."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands to outgoing connections and `bind(0)`."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now, never the same one twice.

    It is drawn from below the kernel's ephemeral range: a port from `bind(0)` can be
    taken by any outgoing connection between this call and the server's bind, which
    on a busy run made a test's second engine start fail with "port in use".
    """
    floor = _ephemeral_floor()
    low = 20000 if floor > 21000 else 1024
    for _ in range(200):
        port = random.randrange(low, floor)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port found in {low}–{floor - 1} on 127.0.0.1")


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
