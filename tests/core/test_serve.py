"""`heroagent --serve` as a real subprocess: answers, heals, stops cleanly, fails clearly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import pytest

from bench.launch import heroagent_argv
from tests.helpers import free_port, pid_running, valkey_pids, wait_for


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
    """`heroagent --serve` with this test's data dir, no user config and free ports.

    Options in `args` come later and win (the last of a repeated option counts).
    """
    ports = ["--redis-port", str(free_port()), "--webdav-port", str(free_port())]
    return heroagent_argv(data, *ports, "--ui-port", str(free_port()), *args, "--serve")


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

    def stop(self) -> None:
        """Close, and kill the valkey child too if it outlived the engine."""
        pid = self.server_pid()
        self.close()
        if pid is not None and pid_running(pid):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def serving(data: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Serve]:
    """A ready `Serve`, stopped with its valkey child on the way out."""
    server = Serve(data, *extra, env=env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def serve(short_tmp: Path) -> Iterator[Serve]:
    server = Serve(short_tmp / "data")
    try:
        yield server
    finally:
        server.stop()


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
    """Run `--serve` expecting it to give up; return its stderr lines.

    Also checks that it left no server child of its own behind and wrote no traceback.
    """
    result = subprocess.run(
        serve_argv(data, *args),
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not [line for line in result.stdout.splitlines() if "ERROR" in line], result.stdout
    assert servers_of(data) == set()
    return result.stderr.splitlines()


def servers_of(data: Path) -> set[int]:
    """Running valkey servers started from this data dir (their title names its config)."""
    mine = set()
    for pid in valkey_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(data) in cmdline:
            mine.add(pid)
    return mine


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


def test_a_damaged_history_ends_start_up_with_one_line_and_no_server_left(
    short_tmp: Path,
) -> None:
    data = short_tmp / "data"
    first = Serve(data)
    first.wait_ready()
    assert first.proc.poll() is None, first.output
    first.proc.send_signal(signal.SIGTERM)
    first.proc.wait(20)
    first.close()
    meta = data / "jobsdb" / "ourdb.meta"
    damaged = bytearray(meta.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    meta.write_bytes(bytes(damaged))
    errors = serve_until_exit(data, "--redis-port", str(free_port()))
    assert len(errors) == 1, errors
    assert "ourdb.meta" in errors[0]
    assert "heroagent ourdb repair" in errors[0]
    # Redis (started before the history) was stopped again: no server of this data dir
    # is left (other servers on the machine are not this test's business).
    wait_for(lambda: not servers_of(data), 10, "the valkey child to exit")


def test_busy_ui_port_stops_what_started_with_one_line(short_tmp: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        # The UI starts last: redis, webdav and the rest are running when it fails.
        errors = serve_until_exit(short_tmp / "data", "--ui-port", str(port))
    assert errors == [
        f"heroagent: cannot start: ui: port {port} on 127.0.0.1 is already in use; "
        "choose another with --ui-port or ui.port"
    ]


def test_corrupt_config_value_is_one_line_and_nothing_binds(short_tmp: Path) -> None:
    data = short_tmp / "data"
    errors = serve_until_exit(data, env={"HEROAGENT_WEBDAV_USERS": "bob:not-a-hash"})
    assert len(errors) == 1
    assert errors[0].startswith("heroagent: cannot start: webdav: webdav.users.bob: not a scrypt")
    # Refused before Redis started: no server ever ran from this data dir.
    assert not (data / "redis" / "valkey.pid").exists()


def test_beyond_loopback_without_credentials_binds_nothing(short_tmp: Path) -> None:
    data = short_tmp / "data"
    errors = serve_until_exit(data, "--host", "0.0.0.0")
    assert errors == [
        "heroagent: cannot start: webdav: webdav on 0.0.0.0 needs webdav.users; refusing "
        "anonymous access beyond loopback; ui: ui on 0.0.0.0 needs ui.token; refusing an "
        "open API beyond loopback"
    ]
    assert not (data / "redis" / "valkey.pid").exists()


def test_second_signal_stops_at_once_and_still_stops_the_server(serve: Serve) -> None:
    serve.wait_ready()
    server = serve.server_pid()
    assert server is not None
    argv = cast(list[str], serve.proc.args)
    ui_port = int(argv[argv.index("--ui-port") + 1])
    # A call that outlasts the UI's graceful stop (3 s) keeps the first stop busy.
    busy = socket.create_connection(("127.0.0.1", ui_port))
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "fake.sleep", "params": {"seconds": 30}}'
    busy.sendall(
        b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    try:
        # A round trip on another connection: the call, sent before it, has been taken up.
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/healthz", timeout=10) as ok:
            assert ok.status == 200
        serve.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "stopping;" in serve.output, 10, "the graceful stop to begin")
        second = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        code = serve.proc.wait(10)
        took = time.monotonic() - second
    finally:
        busy.close()
    assert code == 1, serve.output
    assert "second SIGTERM: stopping at once" in serve.output
    assert "stopped at once" in serve.output
    assert took < 2.5, serve.output
    wait_for(lambda: not pid_running(server), 5, "the server child to be gone")


def test_sigterm_with_stalled_and_trickling_uploads_exits_within_five_seconds(
    short_tmp: Path,
) -> None:
    from tests.core.webdav.test_stop import open_put

    dav_port = free_port()
    server = Serve(short_tmp / "data", "--webdav-port", str(dav_port))
    server.wait_ready()
    valkey = server.server_pid()
    assert valkey is not None, server.output
    stalled = [open_put(dav_port, f"stalled-{i}.bin") for i in range(16)]
    trickling = [open_put(dav_port, f"trickle-{i}.bin") for i in range(16)]
    try:
        for conn in trickling:  # a byte more on each, as a slow client sends them
            conn.send(b"x")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(10)
        elapsed = time.monotonic() - started
        wait_for(lambda: not pid_running(valkey), 5, "the valkey child to exit")
    finally:
        for conn in stalled + trickling:
            conn.close()
        server.close()
        if pid_running(valkey):
            os.kill(valkey, signal.SIGKILL)
    assert elapsed < 5.0, server.output
    assert server.proc.returncode == 0, server.output
