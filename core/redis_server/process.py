"""Child-process plumbing for the server: spawn tied to our life, stale pidfiles, stop ladder."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec hook that makes the kernel SIGTERM the child when the engine dies.

    SIGTERM (not SIGKILL) lets valkey fsync its append-only file on the way out (and a
    job-slots child hand its jobs back). The ppid check closes the window where the
    parent died before prctl ran.
    """
    libc_name = ctypes.util.find_library("c")

    def hook() -> None:
        if sys.platform == "linux" and libc_name:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # Own process group, so a Ctrl-C meant for the TUI does not reach the server first.
        os.setpgid(0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


async def spawn(argv: list[str], cwd: Path, output: Path) -> asyncio.subprocess.Process:
    """Start the server process, tied to this process's life; its stdout/stderr go to `output`.

    A file rather than a pipe: nobody has to drain it, and a fatal config error the
    server prints before its own log opens is still there to quote.
    """
    with output.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            preexec_fn=die_with_parent(os.getpid()),
        )


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (zombies included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


async def clear_stale_pidfile(pidfile: Path, conf: Path) -> None:
    """Handle a pidfile left by an engine that died without stopping its server.

    The orphan is stopped only when its command line names our own config file, so
    nothing we did not start is ever signalled.
    """
    pid = _read_pidfile(pidfile)
    if pid is not None and pid_alive(pid) and str(conf) in _cmdline(pid):
        log.warning("stopping server pid %d left running by an earlier engine", pid)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if await _wait_gone(pid, wait):
                break
    pidfile.unlink(missing_ok=True)  # noqa: ASYNC240 - one tiny unlink, at start-up only


def _read_pidfile(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


async def _wait_gone(pid: int, seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if not pid_alive(pid) or "<defunct>" in _cmdline(pid) or not _cmdline(pid):
            return True
        await asyncio.sleep(0.02)
    return not pid_alive(pid)


async def stop_process(
    proc: asyncio.subprocess.Process,
    polite: Callable[[], object] | None,
    *,
    polite_timeout: float = 5.0,
    term_timeout: float = 3.0,
) -> int | None:
    """Stop a child: the polite way first, then SIGTERM, then SIGKILL, each with a deadline.

    Args:
        proc: The child.
        polite: An awaitable factory asking the server itself to shut down (SHUTDOWN).
        polite_timeout: Seconds to wait after the polite request.
        term_timeout: Seconds to wait after SIGTERM.

    Returns:
        The exit code.
    """
    if proc.returncode is not None:
        return proc.returncode
    if polite is not None:
        try:
            result = polite()
            if asyncio.iscoroutine(result):
                await asyncio.wait_for(result, polite_timeout)
        except Exception as exc:  # the connection drops as the server exits; that is success
            log.debug("polite shutdown request ended with %r", exc)
        try:
            return await asyncio.wait_for(proc.wait(), polite_timeout)
        except TimeoutError:
            log.warning("server pid %d ignored SHUTDOWN; sending SIGTERM", proc.pid)
    for sig, timeout in ((signal.SIGTERM, term_timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            log.warning("server pid %d survived %s", proc.pid, signal.Signals(sig).name)
    return proc.returncode


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (the same test the server makes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False
