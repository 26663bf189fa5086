"""WSGI middleware before WsgiDAV: Host and origin, path checks, read-only, body size, a record."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import KW_ONLY, dataclass
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlparse, urlsplit

from cheroot.errors import MaxSizeExceeded
from wsgidav.dav_error import HTTP_BAD_REQUEST, HTTP_REQUEST_ENTITY_TOO_LARGE, DAVError

from core.netguard import cross_site, host_allowed, same_origin

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

READ_METHODS = ("OPTIONS", "GET", "HEAD", "PROPFIND")
# Everything that changes a resource, its properties or its locks. WsgiDAV's own
# read-only flag still lets LOCK and PROPPATCH through, so the guard refuses them here.
WRITE_METHODS = frozenset(
    {"PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPPATCH", "LOCK", "UNLOCK", "POST", "PATCH"}
)
# The environ key the directory listing sets, so its response gets the listing's policy.
LISTING_KEY = "heroagent.listing"
# Files on the share are whatever someone uploaded: an HTML or SVG file must not run
# script as this origin (it could then read and write the whole share, inbox included).
FILE_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"
# The listing is our own page: its stylesheet and icons load, nothing else (it has no
# use for WsgiDAV's script, which only drives the SharePoint plugin, switched off here).
LISTING_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    # Other sites' pages may not embed these files (<script src>, <img>) either.
    ("Cross-Origin-Resource-Policy", "same-origin"),
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


def is_utf8(raw: bytes) -> bool:
    """True when bytes decode as UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _wsgi_bytes(text: str) -> bytes:
    """A WSGI string (URL or header bytes decoded as latin-1) back as its bytes."""
    return text.encode("latin-1", errors="replace")


def _text_path(path_info: str) -> str:
    """PATH_INFO as text: WSGI hands over the URL's bytes decoded as latin-1."""
    try:
        return path_info.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return path_info


def _too_large(limit: int) -> Exception:
    error: Exception = DAVError(
        HTTP_REQUEST_ENTITY_TOO_LARGE,
        f"request body is larger than {limit} bytes",
        add_headers=[("Connection", "close")],
    )
    return error


class _CountingInput:
    """wsgi.input that counts the body bytes the application reads, and bounds them.

    A Content-Length over the limit gets 413 from cheroot before WsgiDAV runs; a chunked
    body only shows its size while it is read, and cheroot then raises a bare error that
    WsgiDAV answered with 500. Here it becomes a DAVError 413: WsgiDAV drops the partial
    upload and answers with that status.
    """

    def __init__(self, stream: Any, limit: int = 0) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0

    def _translate(self, exc: Exception) -> Exception:
        # The chunked reader raises MaxSizeExceeded for a long chunk-size line, a plain
        # OSError with this text for a chunk that would pass the limit, and ValueError
        # for broken chunked framing (the client's fault: 400, not WsgiDAV's 500).
        if isinstance(exc, MaxSizeExceeded) or exc.args == ("Request Entity Too Large",):
            return _too_large(self._limit)
        if isinstance(exc, ValueError):
            error: Exception = DAVError(
                HTTP_BAD_REQUEST, str(exc), add_headers=[("Connection", "close")]
            )
            return error
        return exc

    def _guarded(self, reader: Callable[[int], bytes], size: int) -> bytes:
        """One read of the body: its errors become DAV statuses, its bytes are counted."""
        try:
            data = reader(size)
        except (MaxSizeExceeded, OSError, ValueError) as exc:
            raise self._translate(exc) from None
        self.count += len(data)
        if self._limit and self.count > self._limit:
            raise _too_large(self._limit)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._guarded(self._stream.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._guarded(self._stream.readline, size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


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


@dataclass(frozen=True, eq=False)
class RequestGuard:
    """Refuses what WsgiDAV must never see, adds the response headers, reports each request.

    Host first (DNS rebinding: a page on `evil.example` that resolves to 127.0.0.1 is the
    same origin as the share, so only the Host header gives it away), then the browser's
    own word on where a request comes from (CSRF), then the path, then read-only.
    """

    app: WSGIApp
    _: KW_ONLY
    readonly: bool
    on_finish: Callable[[RequestRecord], None]
    allowed_hosts: frozenset[str]
    max_body_bytes: int = 0

    def _refusal(self, environ: Environ, method: str) -> tuple[str, str] | None:
        host = str(environ.get("HTTP_HOST", ""))
        if not host_allowed(host, self.allowed_hosts):
            # 421: this server is not the one the name was meant for.
            return "421 Misdirected Request", f"host {host!r} is not served here\n"
        browser = {
            "host": host,
            "origin": str(environ.get("HTTP_ORIGIN", "")),
            "sec-fetch-site": str(environ.get("HTTP_SEC_FETCH_SITE", "")),
        }
        if cross_site(browser) or (method not in READ_METHODS and not same_origin(browser)):
            # Reads too: a cross-site page must not fetch the share's files or results.
            return "403 Forbidden", "cross-site request refused\n"
        path_info = str(environ.get("PATH_INFO", ""))
        destination = environ.get("HTTP_DESTINATION")
        if not is_utf8(_wsgi_bytes(path_info)) or (
            destination is not None and not is_utf8(unquote_to_bytes(_wsgi_bytes(str(destination))))
        ):
            # WsgiDAV decodes paths as UTF-8 and dropped the connection when it could not.
            return "400 Bad Request", "paths must be UTF-8\n"
        if unsafe_path(path_info):
            return "400 Bad Request", "dot segments and NUL bytes are not allowed in paths\n"
        if destination is not None and unsafe_destination(destination):
            return "400 Bad Request", "dot segments and NUL bytes are not allowed in paths\n"
        if self.readonly and method in WRITE_METHODS:
            return "403 Forbidden", "this WebDAV share is read-only\n"
        return None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", "")).upper()
        path = _text_path(str(environ.get("PATH_INFO", "")))
        counter = _CountingInput(environ["wsgi.input"], self.max_body_bytes)
        environ["wsgi.input"] = counter
        status = [0]

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(code[:3])
            if self.readonly:
                headers = _read_only_headers(headers)
            policy = LISTING_POLICY if environ.get(LISTING_KEY) else FILE_POLICY
            headers = [*headers, *SECURITY_HEADERS, ("Content-Security-Policy", policy)]
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
