"""`heroagent --serve` as a real subprocess: answers, heals, stops cleanly, fails clearly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, pid_running, wait_for


def ping(address: tuple[str, int] | str, password: str) -> bool:
    """PING over a raw socket, logged in with the engine's client password first."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family) as conn:
            conn.settimeout(1.0)
            conn.connect(address)
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = conn.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer == b"+OK\r\n+PONG\r\n"
    except OSError:
        return False


def serve_argv(data: Path, *args: str) -> list[str]:
    """`heroagent --serve` with this test's data dir, no user config and free ports."""
    return [
        *(sys.executable, "-m", "heroagent_tui", "--config", os.devnull),
        *(
            "--data-dir",
            str(data),
            "--webdav-port",
            str(free_port()),
            "--ui-port",
            str(free_port()),
            *args,
            "--serve",
        ),
    ]


class Serve:
    """A `heroagent --serve` child whose output is collected in a file."""

    def __init__(self, data: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data = data
        self.env = env or {}
        self.port = free_port()
        self.log = data.parent / "serve.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            serve_argv(data, "--redis-port", str(self.port), *extra),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def password(self) -> str:
        """The client password the engine keeps in its data dir."""
        return (self.data / "redis" / "password").read_text().strip()

    @property
    def socket_path(self) -> str:
        return str(self.data / "run" / "valkey.sock")

    def server_pid(self) -> int | None:
        try:
            pid = int((self.data / "redis" / "valkey.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_running(pid) else None

    def wait_ready(self) -> None:
        wait_for(lambda: "ready" in self.output or self.proc.poll() is not None, 30, "ready")
        assert self.proc.poll() is None, self.output

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


@pytest.fixture
def serve(short_tmp: Path) -> Iterator[Serve]:
    server = Serve(short_tmp / "data")
    try:
        yield server
    finally:
        pid = server.server_pid()
        server.close()
        if pid is not None and pid_running(pid):
            os.kill(pid, signal.SIGKILL)


def test_serve_pings_heals_and_stops_clean(serve: Serve) -> None:
    serve.wait_ready()
    assert ping(("127.0.0.1", serve.port), serve.password)
    assert ping(serve.socket_path, serve.password)
    first = serve.server_pid()
    assert first is not None

    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(
        lambda: (
            serve.server_pid() not in (None, first)
            and ping(("127.0.0.1", serve.port), serve.password)
        ),
        3.0,
        "the killed server to be replaced",
    )
    assert time.monotonic() - killed_at < 3.0
    second = serve.server_pid()
    assert second is not None

    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(5) == 0
    assert not pid_running(second)
    assert "stopped" in serve.output


def test_sigint_is_a_clean_stop_too(serve: Serve) -> None:
    serve.wait_ready()
    server = serve.server_pid()
    serve.proc.send_signal(signal.SIGINT)
    assert serve.proc.wait(5) == 0
    assert server is not None
    assert not pid_running(server)


def test_sigkill_of_heroagent_takes_the_server_with_it(serve: Serve) -> None:
    serve.wait_ready()
    server = serve.server_pid()
    assert server is not None
    serve.proc.kill()
    serve.proc.wait(5)
    wait_for(lambda: not pid_running(server), 5, "the orphaned server to exit")


def serve_until_exit(data: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """Run `--serve` expecting it to give up; return its ERROR lines."""
    result = subprocess.run(
        serve_argv(data, *args),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 1, result.stdout
    return [line for line in result.stdout.splitlines() if "ERROR" in line]


def test_busy_port_exits_non_zero_with_one_line(short_tmp: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        errors = serve_until_exit(short_tmp, "--redis-port", str(port))
    assert len(errors) == 1
    assert f"port {port} on 127.0.0.1 is already in use" in errors[0]


def test_missing_server_binary_exits_non_zero(short_tmp: Path) -> None:
    errors = serve_until_exit(
        short_tmp, env={"HEROAGENT_REDIS_SERVER_BINARY": "/nonexistent/valkey-server"}
    )
    assert len(errors) == 1
    assert "redis.server_binary '/nonexistent/valkey-server' is not an executable" in errors[0]
