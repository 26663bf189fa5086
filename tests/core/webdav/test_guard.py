"""The WebDAV guard: Host and origin checks, response headers, body limits, odd paths."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.webdav.guard import FILE_POLICY, LISTING_POLICY
from core.webdav.provider import is_partial_upload
from tests.core.webdav.dav import RunningDav, dav_config
from tests.helpers import wait_for

WRITES = ("PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK", "POST")
LOCK_BODY = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)


def raw(port: int, request: bytes) -> bytes:
    """Send bytes as they are; read the whole reply (the request asks to close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*"))


@pytest.mark.parametrize("method", ["GET", "PROPFIND", "OPTIONS", "PUT", "DELETE", "MKCOL"])
def test_a_foreign_host_gets_421(dav: RunningDav, method: str) -> None:
    (dav.root / "secret.txt").write_bytes(b"secret\n")
    target = "/secret.txt" if method in ("GET", "DELETE") else "/new"
    body = b"x" if method == "PUT" else None
    response = dav.request(method, target, body, {"Host": f"evil.example:{dav.port}"})
    assert response.status == 421
    assert b"secret" not in response.body
    assert leftovers(dav.root) == ["secret.txt"]


def test_names_that_reach_this_server_pass(short_tmp: Path) -> None:
    dav = RunningDav(dav_config(short_tmp, {"webdav.allowed_hosts": ["Dav.Lan"]}))
    try:
        for host in (
            f"127.0.0.1:{dav.port}",
            "127.0.0.1",
            f"localhost:{dav.port}",
            "LOCALHOST",
            "[::1]:8091",
            "192.0.2.7",  # any IP literal: an address cannot be rebound to another server
            f"dav.lan:{dav.port}",
        ):
            assert dav.request("OPTIONS", "/", headers={"Host": host}).status == 200, host
        for host in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example", ""):
            assert dav.request("OPTIONS", "/", headers={"Host": host}).status == 421, host
    finally:
        dav.close()


def test_http10_without_host_gets_421(dav: RunningDav) -> None:
    assert raw(dav.port, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 421 ")


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    "browser",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
    ids=["foreign-origin", "null-origin", "cross-site", "same-site"],
)
def test_cross_site_writes_get_403(dav: RunningDav, method: str, browser: dict[str, str]) -> None:
    (dav.root / "a.txt").write_bytes(b"a\n")
    headers = {"Destination": f"http://127.0.0.1:{dav.port}/b.txt", **browser}
    body = LOCK_BODY if method == "LOCK" else b"x" if method in ("PUT", "POST") else None
    target = "/a.txt" if method != "MKCOL" else "/folder"
    response = dav.request(method, target, body, headers)
    assert response.status == 403, response.body
    assert response.body == b"cross-site request refused\n"
    assert leftovers(dav.root) == ["a.txt"]
    assert (dav.root / "a.txt").read_bytes() == b"a\n"


def test_same_origin_and_plain_clients_may_write(dav: RunningDav) -> None:
    origin = f"http://127.0.0.1:{dav.port}"
    same = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    assert dav.request("PUT", "/page.txt", b"1", same).status == 201
    # WebDAV clients (davfs2, Finder, rclone) send neither header.
    assert dav.request("PUT", "/tool.txt", b"2").status == 201
    assert dav.request("MKCOL", "/f", headers=same).status == 201


def test_cross_site_reads_get_403_and_same_site_reads_pass(dav: RunningDav) -> None:
    (dav.root / "result.json").write_bytes(b'{"secret": 1}')
    for method in ("GET", "HEAD", "PROPFIND", "OPTIONS"):
        response = dav.request(method, "/result.json", headers={"Sec-Fetch-Site": "cross-site"})
        assert response.status == 403, method
        assert b"secret" not in response.body
    for site in ("same-origin", "same-site", "none"):
        response = dav.request("GET", "/result.json", headers={"Sec-Fetch-Site": site})
        assert response.body == b'{"secret": 1}', site


def test_files_are_served_sandboxed(dav: RunningDav) -> None:
    page = b"<html><script>fetch('/inbox/x.hero', {method: 'PUT', body: 'x'})</script></html>"
    assert dav.request("PUT", "/evil.html", page).status == 201
    response = dav.request("GET", "/evil.html")
    assert response.body == page
    assert response.header("Content-Security-Policy") == FILE_POLICY
    assert response.header("Content-Security-Policy").startswith("sandbox;")
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("Cross-Origin-Resource-Policy") == "same-origin"
    # Errors and refusals carry them too.
    for response in (
        dav.request("GET", "/missing"),
        dav.request("GET", "/", headers={"Host": "e"}),
    ):
        assert response.header("Content-Security-Policy") == FILE_POLICY
        assert response.header("X-Content-Type-Options") == "nosniff"


def test_the_listing_gets_its_own_policy(dav: RunningDav) -> None:
    (dav.root / "<b>bold.txt").write_bytes(b"x")
    listing = dav.request("GET", "/")
    assert listing.status == 200
    assert listing.header("Content-Type").startswith("text/html")
    assert listing.header("Content-Security-Policy") == LISTING_POLICY
    assert "script-src" not in LISTING_POLICY  # default-src 'none' covers scripts
    assert b"<b>bold" not in listing.body
    style = dav.request("GET", "/:dir_browser/style.css")
    assert style.status == 200
    assert style.header("Content-Security-Policy") == FILE_POLICY


def chunked(body: bytes, size: int) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("chunk", [100, 4096], ids=["small-chunks", "one-big-chunk"])
def test_an_over_limit_chunked_put_gets_413_and_leaves_nothing(short_tmp: Path, chunk: int) -> None:
    dav = RunningDav(dav_config(short_tmp, {"webdav.max_body_bytes": 1000}))
    try:
        (dav.root / "keep.txt").write_bytes(b"old\n")
        for target in (b"/keep.txt", b"/new.txt"):
            reply = raw(
                dav.port,
                b"PUT " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + chunked(b"y" * 3000, chunk),
            )
            assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
        assert leftovers(dav.root) == ["keep.txt"]
        assert (dav.root / "keep.txt").read_bytes() == b"old\n"
        # Within the limit, chunked uploads work as before.
        reply = raw(
            dav.port,
            b"PUT /ok.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + chunked(b"z" * 500, 100),
        )
        assert reply.startswith(b"HTTP/1.1 201 ")
        assert (dav.root / "ok.txt").read_bytes() == b"z" * 500
    finally:
        dav.close()


def test_an_over_limit_content_length_put_gets_413_and_leaves_nothing(short_tmp: Path) -> None:
    dav = RunningDav(dav_config(short_tmp, {"webdav.max_body_bytes": 1000}))
    try:
        reply = raw(
            dav.port,
            b"PUT /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n"
            b"Connection: close\r\n\r\n",
        )
        assert reply.startswith(b"HTTP/1.1 413 ")
        assert leftovers(dav.root) == []
    finally:
        dav.close()


@pytest.mark.parametrize(
    "path", [b"/\xff.txt", b"/%ff.txt", b"/caf%C3.txt", b"/ok/%c3%28", b"/ok/\xc3\x28"], ids=repr
)
def test_a_path_that_is_not_utf8_gets_400(dav: RunningDav, path: bytes) -> None:
    for method in (b"GET", b"PROPFIND", b"PUT"):
        body = b"Content-Length: 1\r\n\r\nx" if method == b"PUT" else b"\r\n"
        reply = raw(
            dav.port,
            method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + body,
        )
        assert reply.startswith(b"HTTP/1.1 400 "), (method, reply[:200])
        # Raw bytes above 0x7f cheroot refuses itself; escaped ones reach the guard.
        if b"%" in path:
            assert reply.endswith(b"paths must be UTF-8\n")
    assert leftovers(dav.root) == []


def test_a_destination_that_is_not_utf8_gets_400(dav: RunningDav) -> None:
    (dav.root / "a.txt").write_bytes(b"a")
    for destination in (b"/%ff.txt", b"/\xff.txt"):
        reply = raw(
            dav.port,
            b"MOVE /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nDestination: http://127.0.0.1"
            + destination
            + b"\r\nConnection: close\r\n\r\n",
        )
        assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert leftovers(dav.root) == ["a.txt"]


def test_utf8_paths_still_work(dav: RunningDav) -> None:
    assert dav.request("PUT", "/caf%C3%A9.txt", b"x").status == 201
    assert (dav.root / "café.txt").read_bytes() == b"x"
    assert not any(is_partial_upload(name) for name in leftovers(dav.root))


def test_a_large_chunk_streams_to_disk_as_it_arrives(dav: RunningDav) -> None:
    # cheroot's own reader held each chunk in memory until all of it had arrived: one
    # chunk declared as large as the body limit cost that much memory per upload.
    conn = socket.create_connection(("127.0.0.1", dav.port))
    try:
        conn.sendall(
            b"PUT /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"%x\r\n" % (64 << 20) + b"b" * (1 << 20)
        )

        def written() -> int:
            return sum(p.stat().st_size for p in dav.root.iterdir() if is_partial_upload(p.name))

        wait_for(lambda: written() >= 512 << 10, 10, "the first MiB on disk")
    finally:
        conn.close()
    wait_for(lambda: leftovers(dav.root) == [], 10, "the abandoned upload to go")


def test_chunked_uploads_with_chunks_larger_than_a_read(dav: RunningDav) -> None:
    body = bytes(range(256)) * 5000  # 1.28 MB: chunks above the reader's 256 KiB pieces
    reply = raw(
        dav.port,
        b"PUT /c.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunked(body, 700_000),
    )
    assert reply.startswith(b"HTTP/1.1 201 ")
    assert (dav.root / "c.bin").read_bytes() == body


@pytest.mark.parametrize(
    "framing",
    [b"zz\r\nab\r\n0\r\n\r\n", b"2\r\nabXY0\r\n\r\n", b"1" * 5000 + b"\r\n"],
    ids=["bad-size", "no-crlf-after-chunk", "endless-size-line"],
)
def test_broken_chunked_framing_gets_400(dav: RunningDav, framing: bytes) -> None:
    reply = raw(
        dav.port,
        b"PUT /f.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + framing,
    )
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:300]
    assert leftovers(dav.root) == []
