"""WSGI middleware before WsgiDAV: path checks, a true read-only mode, a record per request."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

READ_METHODS = ("OPTIONS", "GET", "HEAD", "PROPFIND")
# Everything that changes a resource, its properties or its locks. WsgiDAV's own
# read-only flag still lets LOCK and PROPPATCH through, so the guard refuses them here.
WRITE_METHODS = frozenset(
    {"PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK", "UNLOCK", "POST", "PATCH"}
)


@dataclass(frozen=True)
class RequestRecord:
    """What one finished request did."""

    method: str
    path: str
    status: int
    bytes: int
    ms: float


def unsafe_path(path: str) -> bool:
    """True when a decoded URL path holds a dot segment, a backslash segment or a NUL.

    WsgiDAV already confines paths to the root; refusing these outright also keeps
    `/a/../b` from being a second name for `/b`.
    """
    if "\x00" in path:
        return True
    segments = path.replace("\\", "/").split("/")
    return any(segment in (".", "..") for segment in segments)


def unsafe_destination(destination: str) -> bool:
    """True when a Destination header names an unsafe path, however it is decoded.

    WsgiDAV unquotes the whole header before parsing it; a client might expect the
    reverse. Either reading must be safe.
    """
    return unsafe_path(unquote(urlsplit(destination).path)) or unsafe_path(
        urlparse(unquote(destination), allow_fragments=False).path
    )


def _text_path(path_info: str) -> str:
    """PATH_INFO as text: WSGI hands over the URL's bytes decoded as latin-1."""
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path_info


class _CountingInput:
    """wsgi.input that counts the body bytes the application reads."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._stream.read(size)
        self.count += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self._stream.readline(size)
        self.count += len(data)
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(hint)
        self.count += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self.count += len(line)
            yield line


class _TrackedBody:
    """The response body: counts what is sent and reports when the server closes it."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[int], None]) -> None:
        self._body = body
        self._finish = finish
        self._sent = 0
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if not self._done:
                self._done = True
                self._finish(self._sent)


def _read_only_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Advertise only read methods and DAV class 1 (no locking)."""
    result = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "allow":
            allowed = [m.strip() for m in value.split(",") if m.strip().upper() in READ_METHODS]
            value = ", ".join(allowed)
        elif lowered == "dav":
            value = "1"
        result.append((name, value))
    return result


class RequestGuard:
    """Refuses unsafe paths and (when read-only) writes; reports every finished request."""

    def __init__(
        self, app: WSGIApp, *, readonly: bool, on_finish: Callable[[RequestRecord], None]
    ) -> None:
        self.app = app
        self.readonly = readonly
        self.on_finish = on_finish

    def _refusal(self, environ: Environ, method: str) -> tuple[str, str] | None:
        if unsafe_path(environ.get("PATH_INFO", "")):
            return "400 Bad Request", "dot segments and NUL bytes are not allowed in paths\n"
        destination = environ.get("HTTP_DESTINATION")
        if destination is not None and unsafe_destination(destination):
            return "400 Bad Request", "dot segments and NUL bytes are not allowed in paths\n"
        if self.readonly and method in WRITE_METHODS:
            return "403 Forbidden", "this WebDAV share is read-only\n"
        return None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", "")).upper()
        path = _text_path(str(environ.get("PATH_INFO", "")))
        counter = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = counter
        status = [0]

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(code[:3])
            if self.readonly:
                headers = _read_only_headers(headers)
            return start_response(code, headers, exc_info)

        def finish(sent: int) -> None:
            elapsed = (time.perf_counter() - started) * 1000
            self.on_finish(RequestRecord(method, path, status[0], counter.count + sent, elapsed))

        refusal = self._refusal(environ, method)
        if refusal is not None:
            code, text = refusal
            body = text.encode()
            start(
                code,
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return _TrackedBody([body], finish)
        try:
            result = self.app(environ, start)
        except BaseException:
            status[0] = status[0] or 500
            finish(0)
            raise
        return _TrackedBody(result, finish)
