"""cheroot's WSGI server with a deadline on request headers and a stop that cannot hang."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any

from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.workers import threadpool

# cheroot's own markers (private, not in its stubs): a worker that takes this from the
# queue exits; cheroot.ThreadPool.stop() puts the same one per worker.
_STOP_WORKER: object = vars(threadpool)["_SHUTDOWNREQUEST"]
# Sent to a client whose headers took too long.
_TIMEOUT_REPLY = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 30\r\n\r\n"
    b"request headers took too long\n"
)


def _shut(sock: socket.socket) -> None:
    """Shut a socket both ways: a thread blocked reading it wakes at once with EOF."""
    # OSError: the worker closed it meanwhile, or the peer already went away.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _reply_and_shut(sock: socket.socket, reply: bytes) -> None:
    """Send a short reply if there is room for it right now, then shut the socket."""
    # A twin without a timeout: send() on a socket with one first waits for room in the
    # send buffer, so a client that does not read could stall the caller.
    with contextlib.suppress(OSError), sock.dup() as twin:
        twin.setblocking(False)
        twin.send(reply)
    _shut(sock)


class _ChunkedBody(cheroot_server.ChunkedRFile):
    """A chunked request body read a piece at a time.

    cheroot's reader reads each whole chunk into memory, so one chunk declared as large
    as the body limit (1 GiB by default) cost that much memory per upload; and it reads
    the chunk-size line without a bound. Here a chunk streams through in PIECE-sized
    reads and a size line longer than MAX_SIZE_LINE is an error.
    """

    PIECE = 256 * 1024
    MAX_SIZE_LINE = 4096

    def __init__(self, rfile: Any, maxlen: int) -> None:
        super().__init__(rfile, maxlen)
        self._left = 0  # bytes of the current chunk not yet read

    def _fetch(self) -> None:
        if self.closed:
            return
        if not self._left:
            line = self.rfile.readline(self.MAX_SIZE_LINE)
            self.bytes_read += len(line)
            if not line.endswith(b"\n"):
                raise ValueError("bad chunked transfer coding: no chunk size line")
            size_text = line.strip().split(b";", 1)[0]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ValueError(f"bad chunked transfer size: {size_text!r}") from None
            if size <= 0:
                self.closed = True
                return
            if self.maxlen and self.bytes_read + size > self.maxlen:
                # The same error cheroot raises, so callers see one kind of refusal.
                raise OSError("Request Entity Too Large")
            self._left = size
        piece = self.rfile.read(min(self._left, self.PIECE))
        if not piece:
            raise ValueError("bad chunked transfer coding: the body ended inside a chunk")
        self.bytes_read += len(piece)
        self._left -= len(piece)
        self.buffer += piece
        if not self._left and self.rfile.read(2) != b"\r\n":
            raise ValueError("bad chunked transfer coding: no CRLF after a chunk")


class _Request(cheroot_server.HTTPRequest):
    """A request that marks its connection while its headers are being read."""

    def parse_request(self) -> None:
        """Read the request line and headers, with the connection's header clock running."""
        conn: _Connection = self.conn
        conn.headers_since = time.monotonic()
        try:
            super().parse_request()
        finally:
            conn.headers_since = None

    def respond(self) -> None:
        """cheroot's respond(), with the chunked body read by _ChunkedBody."""
        if not self.chunked_read:
            super().respond()
            return
        self.rfile = _ChunkedBody(self.conn.rfile, self.server.max_request_body_size)
        self.server.gateway(self).respond()
        if self.ready:
            self.ensure_headers_sent()
        if self.chunked_write:
            self.conn.wfile.write(b"0\r\n\r\n")


class _Connection(cheroot_server.HTTPConnection):
    """A client connection the server knows about until it is closed."""

    RequestHandlerClass = _Request

    def __init__(self, server: Server, sock: socket.socket, makefile: Any) -> None:
        super().__init__(server, sock, makefile)
        # monotonic() when a worker began reading this request's headers; None between
        # requests (an idle keep-alive connection is cheroot's `timeout` to expire).
        self.headers_since: float | None = None
        server.track(self)

    def close(self) -> None:
        """Close, and forget the connection."""
        try:
            super().close()
        finally:
            self.server.untrack(self)


class _Pool(threadpool.ThreadPool):
    """cheroot's worker pool with named daemon threads the server can list."""

    def _spawn_worker(self) -> threadpool.WorkerThread:
        worker = threadpool.WorkerThread(self.server)  # type: ignore[no-untyped-call]
        # Daemon: a worker stuck in application code must not keep the process alive
        # after the stop gave up waiting for it.
        worker.daemon = True
        worker.name = f"webdav-worker-{len(self.server.threads())}"
        self.server.add_thread(worker)
        worker.start()
        return worker


class Server(wsgi.Server):
    """The WebDAV service's HTTP server.

    On top of cheroot: every accepted connection is tracked, a request whose headers do
    not arrive within `header_timeout` is answered 408 and dropped (cheroot's own
    `timeout` only bounds each silent read, so a byte every few seconds held a worker
    forever), and stop() has a deadline: it closes the listening socket, shuts every
    client socket so blocked workers wake, and waits for threads only until then.
    """

    log = logging.getLogger("core.webdav.cheroot")
    # The accept loop's select() timeout; stop() waits up to this long for the loop to notice.
    expiration_interval = 0.1
    ConnectionClass = _Connection

    def __init__(
        self,
        bind_addr: tuple[str, int],
        app: Any,
        *,
        numthreads: int,
        server_name: str,
        socket_timeout: int,
        header_timeout: float,
        stop_seconds: float,
    ) -> None:
        super().__init__(
            bind_addr,
            app,
            numthreads=numthreads,
            server_name=server_name,
            timeout=socket_timeout,
        )
        self.header_timeout = header_timeout
        self.stop_seconds = stop_seconds
        self._threads: list[threading.Thread] = []
        self._loop_thread: threading.Thread | None = None
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = False
        self.requests = _Pool(self, min=numthreads, max=numthreads)

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        """Route cheroot's messages (bad requests, dropped connections) to the logger."""
        self.log.log(level, "%s", msg, exc_info=traceback)

    def track(self, conn: _Connection) -> None:
        """Remember an accepted connection, so stop() and the header clock can reach it."""
        with self._lock:
            self._conns.add(conn)

    def untrack(self, conn: _Connection) -> None:
        """Forget a closed connection."""
        with self._lock:
            self._conns.discard(conn)

    def connections(self) -> list[_Connection]:
        """The open client connections."""
        with self._lock:
            return list(self._conns)

    def add_thread(self, thread: threading.Thread) -> None:
        """Remember a thread this server started."""
        with self._lock:
            self._threads.append(thread)

    def threads(self) -> list[threading.Thread]:
        """Every thread this server started: workers, the accept loop, the header clock."""
        with self._lock:
            return list(self._threads)

    def start_serving(self) -> None:
        """Run the accept loop and the header clock on their own threads (after prepare())."""
        self._loop_thread = threading.Thread(target=self.serve, name="webdav", daemon=True)
        clock = threading.Thread(target=self._watch_headers, name="webdav-headers", daemon=True)
        for thread in (self._loop_thread, clock):
            self.add_thread(thread)
            thread.start()

    def serve(self) -> None:
        """The accept loop, until stop().

        cheroot's serve() also starts a thread that answers 503 when the request queue
        is full; this server's queue is unbounded, so that thread would never work.
        """
        # Set by prepare(); cheroot's stubs do not declare it.
        manager: Any = getattr(self, "_connections", None)
        while manager is not None and self.ready and not self._stopping.is_set():
            try:
                manager.run(self.expiration_interval)
            except Exception:
                self.error_log("Error in HTTPServer.serve", level=logging.ERROR, traceback=True)

    def _watch_headers(self) -> None:
        """Drop connections whose request headers have taken longer than `header_timeout`."""
        tick = min(0.5, self.header_timeout / 4)
        while not self._stopping.wait(tick):
            now = time.monotonic()
            for conn in self.connections():
                since = conn.headers_since
                if since is None or now - since <= self.header_timeout:
                    continue
                conn.headers_since = None
                self.error_log(
                    f"dropping {conn.remote_addr}:{conn.remote_port}: request headers "
                    f"took more than {self.header_timeout:g} s",
                    level=logging.INFO,
                )
                _reply_and_shut(conn.socket, _TIMEOUT_REPLY)

    def stop(self, seconds: float | None = None) -> list[threading.Thread]:  # type: ignore[override]
        """Stop serving within `seconds` (default `stop_seconds`); return threads still alive.

        cheroot's own stop() joins each busy worker without a bound once its timeout is
        spent, so one upload that trickles a byte every few seconds held it forever.
        """
        deadline = time.monotonic() + (self.stop_seconds if seconds is None else seconds)
        with self._lock:
            if self._stopped:
                return [t for t in self._threads if t.is_alive()]
            self._stopped = True
        # Not ready: cheroot closes a finished keep-alive connection instead of parking it.
        self.ready = False
        self._stopping.set()
        manager: Any = getattr(self, "_connections", None)
        if manager is not None:
            # What cheroot's ConnectionManager.stop() sets, without its unbounded wait.
            manager._stop_requested = True
        threads = self.threads()
        me = threading.current_thread()
        loop = self._loop_thread
        if loop is not None and loop is not me:
            loop.join(max(0.0, deadline - time.monotonic()))
        listener, self.socket = self.socket, None
        if listener is not None:
            listener.close()
        for conn in self.connections():
            _shut(conn.socket)
        workers = [t for t in threads if isinstance(t, threadpool.WorkerThread)]
        for _ in workers:
            self.requests._queue.put(_STOP_WORKER)
        for thread in threads:
            if thread is not me:
                thread.join(max(0.0, deadline - time.monotonic()))
        if manager is not None and (loop is None or not loop.is_alive()):
            # The selector is no longer in use: close the parked keep-alive connections.
            manager.close()
        busy = {w.conn for w in workers if w.is_alive()}
        for conn in self.connections():
            if conn not in busy:
                # Queued but never read (the workers stopped first): nobody else closes it.
                conn.close()
        return [t for t in threads if t.is_alive()]
