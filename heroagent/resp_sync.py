"""The client library's blocking Redis connection, for Client and the command line.

The twin of heroagent.resp on plain sockets: what it says and how it reads the replies
is heroagent.wire's, only the I/O is here. A `Client` and `heroagent submit` then never
import asyncio, which alone takes longer to import than the rest of a submit takes to
run (docs/client.md has the figures). Timeouts are the socket's own; a `deadline` (a
`time.monotonic()` value) ends a read with DeadlinePassed, the wait's own timeout.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from core.channel import Plan, Stepper, T
from heroagent import wire


def run(plan: Plan[T], perform: Callable[[Any], Any]) -> T:
    """Run a plan: each step it yields is done with `perform`, its outcome sent back."""
    steps = Stepper(plan)
    while not steps.done:
        steps.settle(perform)
    return steps.result


def _left(timeout: float | None, deadline: float | None) -> tuple[float | None, bool]:
    """How long a read may block, and whether the deadline (not `timeout`) is what ends it."""
    if deadline is None:
        return timeout, False
    left = deadline - time.monotonic()
    if left <= 0:
        raise wire.DeadlinePassed  # not a timeout of 0, which would make the socket non-blocking
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


class SyncConnection:
    """One open connection: commands are sent and their replies read back in order."""

    def __init__(self, sock: socket.socket, where: str) -> None:
        self._sock = sock
        self._replies = wire.Replies(where)
        self.where = where
        self.broken = False

    def execute(
        self,
        *args: str | bytes | int | float,
        timeout: float | None = wire.REPLY_TIMEOUT_SECONDS,
        deadline: float | None = None,
    ) -> Any:
        """Send one command and return its reply; an error reply is raised."""
        self.send(*args)
        return self.reply(timeout, deadline)

    def send(self, *args: str | bytes | int | float) -> None:
        """Write one command (its reply is read with `reply`)."""
        try:
            self._sock.settimeout(wire.REPLY_TIMEOUT_SECONDS)
            self._sock.sendall(wire.pack(args))
        except OSError as exc:
            self.close()
            raise wire.RespConnectionError(f"{self.where}: {exc.strerror or exc}") from None

    def reply(
        self, timeout: float | None = wire.REPLY_TIMEOUT_SECONDS, deadline: float | None = None
    ) -> Any:
        """The next reply; a connection left mid-reply (interrupted, broken) is closed."""
        try:
            while (reply := self._replies.next()) is False:
                wait, by_deadline = _left(timeout, deadline)
                self._sock.settimeout(wait)
                try:
                    data = self._sock.recv(wire.READ_CHUNK)
                except TimeoutError:
                    if by_deadline:
                        raise wire.DeadlinePassed from None
                    raise self._replies.silent(timeout) from None
                except OSError as exc:
                    raise wire.RespConnectionError(f"{self.where}: {exc.strerror or exc}") from None
                self._replies.feed(data)
        except BaseException:
            self.close()
            raise
        return wire.checked(reply)

    @property
    def stale(self) -> bool:
        """True when it cannot take a command: broken, or closed by the server while idle.

        An idle connection has nothing to read; anything there (its end, most likely)
        means it is not one to reuse.
        """
        if self.broken:
            return True
        try:
            # poll, not select: select refuses a descriptor above 1023 (a busy program's).
            poller = select.poll()
            poller.register(self._sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.broken = True
        self._sock.close()


def _open(target: wire.Target, timeout: float) -> socket.socket:
    if target.path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(target.path)
        except BaseException:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((target.host, target.port), timeout)
    if target.tls is None:
        return sock
    try:
        return wire.tls_context(target.tls).wrap_socket(sock, server_hostname=target.host)
    except BaseException:
        sock.close()
        raise


def connect(target: wire.Target, timeout: float = wire.CONNECT_TIMEOUT_SECONDS) -> SyncConnection:
    """A connection to `target`, logged in (AUTH) and on its db (SELECT), within `timeout`."""
    try:
        sock = _open(target, timeout)
    except (TimeoutError, OSError) as exc:
        if isinstance(exc, wire.RespConnectionError):
            raise
        raise wire.connect_failed(target, exc, timeout) from None
    connection = SyncConnection(sock, target.where)
    try:
        run(wire.login(target), lambda step: connection.execute(*step.args, timeout=timeout))
    except BaseException:
        connection.close()
        raise
    return connection


def _probe(step: wire.Probe) -> Any:
    connection = connect(step.target, step.timeout)
    try:
        return connection.execute(*step.args, timeout=step.timeout)
    finally:
        connection.close()


class SyncRespClient:
    """Connections to one server, made on demand and reused; threads each get their own."""

    def __init__(self, find: Callable[[], Plan[wire.Target]]) -> None:
        self._find = find
        self._idle: wire.Idle[SyncConnection] = wire.Idle()

    def _target(self) -> wire.Target:
        return run(self._find(), _probe)

    def execute(
        self,
        *args: str | bytes | int | float,
        timeout: float | None = wire.REPLY_TIMEOUT_SECONDS,
        deadline: float | None = None,
    ) -> Any:
        """Run one command on a free connection; its reply (an error reply is raised)."""
        idle = self._idle  # given back there: closed, if the client closed meanwhile
        connection = idle.take() or connect(self._target())
        try:
            return connection.execute(*args, timeout=timeout, deadline=deadline)
        finally:
            idle.give(connection)

    def open_subscription(
        self, channel: str, confirm_seconds: float = wire.CONNECT_TIMEOUT_SECONDS
    ) -> SyncSubscription:
        """A connection of its own subscribed to `channel`, once the server confirmed it."""
        connection = connect(self._target())
        try:
            connection.send("SUBSCRIBE", channel)
            wire.confirm_subscribe(connection.reply(confirm_seconds), connection.where)
        except BaseException:
            connection.close()
            raise
        return SyncSubscription(connection)

    @contextlib.contextmanager
    def subscribe(
        self, channel: str, confirm_seconds: float = wire.CONNECT_TIMEOUT_SECONDS
    ) -> Iterator[SyncSubscription]:
        """`open_subscription`, closed at the end of the block."""
        subscription = self.open_subscription(channel, confirm_seconds)
        try:
            yield subscription
        finally:
            subscription.close()

    def close(self) -> None:
        """Close every connection (one in use once its command is answered).

        The client may be used again: it makes new connections.
        """
        idle, self._idle = self._idle, wire.Idle()
        idle.close()


class SyncSubscription(wire.Subscribed[SyncConnection]):
    """The messages of a subscribed channel, one by one."""

    def message(self, deadline: float | None = None) -> bytes:
        """The next message's data; wire.DeadlinePassed at `deadline` (None: no end)."""
        while (data := wire.message_data(self._connection.reply(None, deadline))) is None:
            pass
        return data
