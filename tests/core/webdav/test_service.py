"""The WebDAV service: start and stop, clear start errors, auth rules, limits, request events."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from core.config import Config
from core.engine import Engine
from core.events import LogEmitted, WebDAVRequest
from core.events.bus import EventBus
from core.services import ServiceStartError, ServiceState
from core.webdav.provider import UPLOAD_PREFIX
from core.webdav.service import WebDAVService
from tests.core.webdav.dav import PASSWORD, USER, RunningDav, dav_config
from tests.helpers import wait_for


def test_serves_the_root_and_frees_the_port_on_stop(short_tmp: Path) -> None:
    dav = RunningDav(dav_config(short_tmp))
    try:
        assert dav.service.state is ServiceState.RUNNING
        assert dav.service.address() == f"http://127.0.0.1:{dav.port}/"
        (dav.root / "hello.txt").write_bytes(b"hi\n")
        assert dav.request("GET", "/hello.txt").body == b"hi\n"
    finally:
        dav.close()
    assert dav.service.status().state is ServiceState.STOPPED
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", dav.port))


def test_server_header_has_no_version(dav: RunningDav) -> None:
    for method, path in (("OPTIONS", "/"), ("GET", "/"), ("GET", "/missing"), ("PROPFIND", "/")):
        response = dav.request(method, path, headers={"Depth": "0"})
        assert response.header("Server") == "HeroAgent"
        assert not re.search(rb"WsgiDAV/\d|Cheroot/\d|Python/\d", response.body)


async def test_busy_port_is_a_clear_error(short_tmp: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        service = WebDAVService(dav_config(short_tmp, {"webdav.port": port}), EventBus())
        with pytest.raises(ServiceStartError) as info:
            await service.start()
    assert str(info.value).startswith(f"port {port} on 127.0.0.1 is already in use")
    assert "--webdav-port" in str(info.value)
    assert service.state is ServiceState.FAILED


async def test_beyond_loopback_without_users_refuses_to_start(short_tmp: Path) -> None:
    service = WebDAVService(dav_config(short_tmp, {"webdav.host": "0.0.0.0"}), EventBus())
    with pytest.raises(ServiceStartError) as info:
        await service.start()
    assert str(info.value) == (
        "webdav on 0.0.0.0 needs webdav.users; refusing anonymous access beyond loopback"
    )
    # Asking for anonymous access does not change that.
    config = dav_config(short_tmp, {"webdav.host": "0.0.0.0", "webdav.anonymous": True})
    with pytest.raises(ServiceStartError, match="refusing anonymous access beyond loopback"):
        await WebDAVService(config, EventBus()).start()


def test_beyond_loopback_with_users_requires_login(short_tmp: Path) -> None:
    config = dav_config(short_tmp, {"webdav.host": "0.0.0.0", "webdav.anonymous": True}, users=True)
    dav = RunningDav(config, auth=(USER, PASSWORD))
    try:
        assert dav.request("GET", "/", auth=False).status == 401
        assert dav.request("GET", "/").status == 200
    finally:
        dav.close()


async def test_anonymous_off_and_no_users_is_a_clear_error(short_tmp: Path) -> None:
    service = WebDAVService(dav_config(short_tmp, {"webdav.anonymous": False}), EventBus())
    with pytest.raises(ServiceStartError, match="nobody could log in"):
        await service.start()


async def test_a_bad_hash_names_the_user(short_tmp: Path) -> None:
    config = dav_config(short_tmp, {"webdav.users": {"bob": "plain-text-password"}})
    with pytest.raises(ServiceStartError) as info:
        await WebDAVService(config, EventBus()).start()
    assert str(info.value).startswith("webdav.users.bob: not a scrypt$n$r$p$salt$hash string")
    assert "heroagent webdav hash-password" in str(info.value)


def test_loopback_is_anonymous_by_default(dav: RunningDav) -> None:
    assert dav.request("PUT", "/a.txt", b"x", auth=False).status == 201
    assert dav.request("GET", "/a.txt", auth=False).status == 200


def test_users_mean_401_without_credentials(dav_auth: RunningDav) -> None:
    for method in ("GET", "OPTIONS", "PROPFIND", "PUT", "DELETE", "MKCOL", "LOCK"):
        response = dav_auth.request(method, "/x", b"" if method == "PUT" else None, auth=False)
        assert response.status == 401, method
        assert response.header("WWW-Authenticate") == 'Basic realm="HeroAgent"'
    assert dav_auth.request("GET", "/", auth=(USER, "wrong")).status == 401
    assert dav_auth.request("GET", "/", auth=("mallory", PASSWORD)).status == 401
    assert dav_auth.request("GET", "/").status == 200
    assert not (dav_auth.root / "x").exists()


def test_body_and_header_limits(short_tmp: Path) -> None:
    dav = RunningDav(dav_config(short_tmp, {"webdav.max_body_bytes": 1000}))
    try:
        assert dav.request("PUT", "/small.bin", b"x" * 1000).status == 201
        assert dav.request("PUT", "/big.bin", b"x" * 1001).status == 413
        assert not (dav.root / "big.bin").exists()
        huge = {"X-Padding": "p" * 70_000}
        assert dav.request("GET", "/small.bin", headers=huge).status in (413, 431)
    finally:
        dav.close()


def test_each_request_is_an_event(dav: RunningDav) -> None:
    dav.request("PUT", "/e.txt", b"12345")
    dav.request("GET", "/e.txt")
    dav.request("GET", "/nope.txt")

    def requests() -> list[WebDAVRequest]:
        return [e for e in dav.events if isinstance(e, WebDAVRequest)]

    wait_for(lambda: len(requests()) >= 3, 5, "three request events")
    # Each event is sent when the server closes the response, which may be after the
    # client has already sent its next request: match them by content, not by order.
    by_key = {(e.method, e.path): e for e in requests()}
    put, get, missing = by_key["PUT", "/e.txt"], by_key["GET", "/e.txt"], by_key["GET", "/nope.txt"]
    # bytes counts both ways: the 5-byte upload plus the small "201 Created" page.
    assert (put.method, put.path, put.status) == ("PUT", "/e.txt", 201)
    assert put.bytes > 5
    assert (get.method, get.status, get.bytes) == ("GET", 200, 5)
    assert (missing.status, missing.path) == (404, "/nope.txt")
    assert 0 <= get.ms < 5000
    # A request event is also a log line, so the log view shows it without knowing WebDAV.
    assert isinstance(get, LogEmitted)
    assert get.source == "webdav"
    assert get.message.startswith("GET /e.txt 200 5 B ")


def test_a_slow_put_is_invisible_until_complete(dav: RunningDav) -> None:
    (dav.root / "doc.txt").write_bytes(b"old\n")
    conn = socket.create_connection(("127.0.0.1", dav.port))
    try:
        conn.sendall(b"PUT /doc.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 8\r\n\r\nnew-")

        def in_flight() -> bool:
            return any(p.name.startswith(UPLOAD_PREFIX) for p in dav.root.iterdir())

        # The server is writing the new content: readers must still see the old one.
        wait_for(in_flight, 5, "the upload to begin on disk")
        assert dav.request("GET", "/doc.txt").body == b"old\n"
        listing = dav.request("PROPFIND", "/", headers={"Depth": "1"})
        assert b"heroagent-upload" not in listing.body
        conn.sendall(b"doc\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 204")
    finally:
        conn.close()
    assert (dav.root / "doc.txt").read_bytes() == b"new-doc\n"
    assert [p.name for p in dav.root.iterdir()] == ["doc.txt"]


async def test_engine_runs_webdav_with_the_other_services(engine_config: Config) -> None:
    async with Engine(engine_config) as engine:
        status = {s.name: s for s in engine.statuses()}["webdav"]
        assert status.state is ServiceState.RUNNING
        assert status.address == f"http://127.0.0.1:{engine_config.webdav.port}/"
        assert (engine_config.data_path / "webdav").is_dir()


PROPPATCH = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    b"<D:set><D:prop><Z:colour>red</Z:colour></D:prop></D:set></D:propertyupdate>"
)


def test_dead_properties_survive_a_restart(short_tmp: Path) -> None:
    config = dav_config(short_tmp)
    dav = RunningDav(config)
    try:
        assert dav.request("PUT", "/p.txt", b"x").status == 201
        assert dav.request("PROPPATCH", "/p.txt", PROPPATCH).status == 207
    finally:
        dav.close()
    assert (config.data_path / "webdav-state" / "props.db").exists()
    again = RunningDav(config)
    try:
        found = again.request("PROPFIND", "/p.txt", headers={"Depth": "0"})
        assert b"colour" in found.body
        assert b"red" in found.body
    finally:
        again.close()


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 100\r\n\r\nhalf", b"Transfer-Encoding: chunked\r\n\r\n4\r\nhalf\r\n"],
    ids=["content-length", "chunked"],
)
def test_an_abandoned_put_leaves_nothing_behind(dav: RunningDav, framing: bytes) -> None:
    # cheroot ends a Content-Length body quietly when the client goes away; the upload
    # must still not replace (or create) the target with the part that arrived.
    (dav.root / "keep.txt").write_bytes(b"old\n")
    for target in (b"/keep.txt", b"/new.txt"):
        conn = socket.create_connection(("127.0.0.1", dav.port))
        conn.sendall(b"PUT " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing)
        wait_for(lambda: any(p.name.startswith(".heroagent") for p in dav.root.iterdir()), 5)
        conn.close()
        wait_for(lambda: len(list(dav.root.iterdir())) == 1, 5, "the partial upload to go")
    assert (dav.root / "keep.txt").read_bytes() == b"old\n"
