"""uvicorn's h11 protocol with a deadline on request headers, so a half-sent request is dropped."""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_TIMEOUT_BODY = b"request headers took too long\n"
# What a client that ran out of time gets, when it had started a request at all.
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Connection: close\r\n"
    b"\r\n%s"
) % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)


class HeaderDeadlineProtocol(H11Protocol):
    """H11Protocol that closes a connection whose request headers are not in within a deadline.

    uvicorn's `timeout_keep_alive` runs only while a kept-alive connection sits idle, and
    any byte cancels it; nothing bounds the wait for the rest of a request line or header
    block, so a client sending half a request (or a byte a minute) holds a connection,
    its buffers and a slot forever. The deadline is set when a connection opens and again
    when a response ends, and lifted once h11 has parsed the headers; it is not reset by
    data, so dribbling bytes does not extend it. Bodies are the app's concern (body limit).
    """

    header_timeout: float = 10.0

    _header_deadline: asyncio.TimerHandle | None = None
    _partial = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the first request's deadline."""
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        """Feed h11, then lift the deadline if the headers are complete."""
        if self.conn.their_state is h11.IDLE:
            self._partial = True
        super().data_received(data)
        self._headers_arrived()

    def on_response_complete(self) -> None:
        """A kept-alive connection waits for its next request under a fresh deadline."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()
            # A pipelined request may already have been parsed by the call above.
            self._headers_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._partial = False
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_arrived(self) -> None:
        if self._header_deadline is not None and self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._partial:
            self.logger.info("closing a connection whose request headers took too long")
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to hand uvicorn (as `http=`), with this many seconds for headers."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
