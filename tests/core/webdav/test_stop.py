"""The WebDAV server's bounds: a stop that stalled clients cannot hold, and a header deadline."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path

from core.webdav.provider import is_partial_upload
from core.webdav.service import STOP_SECONDS, THREADS
from tests.core.webdav.dav import RunningDav, dav_config
from tests.helpers import wait_for

# What the stop may take beyond its own deadline: thread scheduling on a busy machine.
SLACK = 3.0


def partial_uploads(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if is_partial_upload(p.name)]


def open_put(port: int, name: str) -> socket.socket:
    """A PUT whose headers are complete and whose 1 MB body has just begun."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(
        f"PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nx".encode()
    )
    return conn


def test_stop_keeps_its_deadline_with_stalled_and_trickling_uploads(short_tmp: Path) -> None:
    dav = RunningDav(dav_config(short_tmp))
    server = dav.service.server
    assert server is not None
    threads = server.threads()
    stalled: list[socket.socket] = []
    trickling: list[socket.socket] = []
    done = threading.Event()
    rounds = [0]

    def trickle() -> None:
        # A byte a second per connection: each read succeeds long before cheroot's
        # 30 s socket timeout, so only the stop itself can end these uploads.
        while not done.wait(1.0):
            for conn in trickling:
                with contextlib.suppress(OSError):
                    conn.send(b"x")
            rounds[0] += 1

    sender = threading.Thread(target=trickle, daemon=True)
    try:
        for i in range(16):
            stalled.append(open_put(dav.port, f"stalled-{i}.bin"))
            trickling.append(open_put(dav.port, f"trickle-{i}.bin"))
        # Every worker is inside an upload (half stalled, half trickling); the rest queue.
        wait_for(lambda: len(partial_uploads(dav.root)) == THREADS, 10, "every worker busy")
        sender.start()
        wait_for(lambda: rounds[0] >= 2, 10, "two trickle rounds")
        started = time.monotonic()
        dav.call(asyncio.wait_for(dav.service.stop(), STOP_SECONDS + SLACK))
        elapsed = time.monotonic() - started
        assert elapsed < STOP_SECONDS + SLACK
        assert [t.name for t in threads if t.is_alive()] == []
        assert len(threads) == THREADS + 2  # the workers, the accept loop, the header clock
        # Each interrupted upload dropped its hidden file; no target was created.
        assert sorted(p.name for p in dav.root.iterdir()) == []
    finally:
        done.set()
        for conn in stalled + trickling:
            conn.close()
        dav.close()
    with socket.socket() as probe:
        # The server closed its ends first, so they linger in TIME_WAIT: SO_REUSEADDR
        # binds past those, and still fails while anything listens on the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", dav.port))


def test_stop_is_quick_when_idle(dav: RunningDav) -> None:
    # A parked keep-alive connection must not hold the stop either.
    keep = socket.create_connection(("127.0.0.1", dav.port))
    try:
        keep.sendall(b"OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert keep.recv(100).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        dav.call(dav.service.stop())
        assert time.monotonic() - started < STOP_SECONDS
        keep.settimeout(5)
        # The server closed it: the client reads EOF instead of waiting on a dead peer.
        while keep.recv(4096):
            pass
    finally:
        keep.close()


def read_reply(conn: socket.socket, limit: float) -> bytes:
    """Everything the server sends until it closes the connection, within `limit` seconds."""
    conn.settimeout(limit)
    chunks = []
    while chunk := conn.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_half_sent_headers_are_dropped(short_tmp: Path) -> None:
    timeout = 0.5
    dav = RunningDav(dav_config(short_tmp, {"webdav.header_timeout": timeout}))
    try:
        conn = socket.create_connection(("127.0.0.1", dav.port))
        with conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half")
            started = time.monotonic()
            reply = read_reply(conn, timeout + SLACK)
            assert reply.startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - started < timeout + SLACK
        # A client that connects and says nothing is held no longer.
        with socket.create_connection(("127.0.0.1", dav.port)) as silent:
            assert read_reply(silent, timeout + SLACK).startswith(b"HTTP/1.1 408 ")
        # The server still serves whoever sends a whole request.
        assert dav.request("OPTIONS", "/").status == 200
    finally:
        dav.close()


def test_trickled_headers_are_dropped(short_tmp: Path) -> None:
    timeout = 0.5
    dav = RunningDav(dav_config(short_tmp, {"webdav.header_timeout": timeout}))
    done = threading.Event()
    try:
        conn = socket.create_connection(("127.0.0.1", dav.port))
        conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        def trickle() -> None:
            # A header byte every 50 ms: each read is quick, the headers never end.
            while not done.wait(0.05):
                try:
                    conn.send(b"X")
                except OSError:
                    return

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        started = time.monotonic()
        try:
            reply = read_reply(conn, timeout + SLACK)
        finally:
            done.set()
            sender.join(5)
            conn.close()
        assert reply.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < timeout + SLACK
    finally:
        dav.close()
