"""Read-only mode, method by method: every write refused, only read methods advertised."""

from __future__ import annotations

import pytest

from tests.core.webdav.dav import RunningDav

LOCK_BODY = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
)
PROPPATCH_BODY = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test:">'
    b"<D:set><D:prop><Z:colour>red</Z:colour></D:prop></D:set></D:propertyupdate>"
)
WRITES = [
    ("PUT", "/docs/a.txt", b"changed\n", {}),
    ("PUT", "/docs/new.txt", b"new\n", {}),
    ("DELETE", "/docs/a.txt", None, {}),
    ("DELETE", "/docs/", None, {}),
    ("MKCOL", "/made/", None, {}),
    ("MOVE", "/docs/a.txt", None, {"Destination": "/docs/b.txt"}),
    ("COPY", "/docs/a.txt", None, {"Destination": "/docs/c.txt"}),
    ("PROPPATCH", "/docs/a.txt", PROPPATCH_BODY, {"Content-Type": "application/xml"}),
    ("LOCK", "/docs/a.txt", LOCK_BODY, {"Content-Type": "application/xml", "Timeout": "Second-60"}),
    ("LOCK", "/docs/unmapped.txt", LOCK_BODY, {"Content-Type": "application/xml"}),
    ("UNLOCK", "/docs/a.txt", None, {"Lock-Token": "<opaquelocktoken:nope>"}),
    ("POST", "/docs/a.txt", b"x", {}),
]


def tree(dav: RunningDav) -> dict[str, bytes]:
    return {
        str(p.relative_to(dav.root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(dav.root.rglob("*"))
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"), WRITES, ids=[f"{m} {p}" for m, p, _, _ in WRITES]
)
def test_write_method_is_refused(
    dav_readonly: RunningDav, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    before = tree(dav_readonly)
    headers = dict(headers)
    if "Destination" in headers:
        headers["Destination"] = f"http://127.0.0.1:{dav_readonly.port}{headers['Destination']}"
    response = dav_readonly.request(method, path, body, headers)
    assert response.status in (403, 405), (method, path, response.status, response.body)
    assert tree(dav_readonly) == before
    # A refused PROPPATCH must not have stored the property either.
    props = dav_readonly.request("PROPFIND", "/docs/a.txt", headers={"Depth": "0"})
    assert b"colour" not in props.body
    assert b"lockdiscovery><D:activelock" not in props.body


def test_reads_still_work(dav_readonly: RunningDav) -> None:
    assert dav_readonly.request("GET", "/docs/a.txt").body == b"read me\n"
    assert dav_readonly.request("HEAD", "/docs/a.txt").status == 200
    listing = dav_readonly.request("PROPFIND", "/docs/", headers={"Depth": "1"})
    assert listing.status == 207
    assert b"a.txt" in listing.body


@pytest.mark.parametrize("path", ["/", "/docs/", "/docs/a.txt", "/docs/unmapped.txt", "*"])
def test_options_advertises_only_reads(dav_readonly: RunningDav, path: str) -> None:
    response = dav_readonly.request("OPTIONS", path)
    assert response.status == 200
    assert response.header("DAV").replace(" ", "") == "1"
    allowed = {m.strip() for m in response.header("Allow").split(",") if m.strip()}
    assert allowed <= {"OPTIONS", "GET", "HEAD", "PROPFIND"}, allowed


def test_read_write_share_advertises_writes_for_contrast(dav: RunningDav) -> None:
    response = dav.request("OPTIONS", "/")
    assert "PUT" in response.header("Allow") or "DELETE" in response.header("Allow")
    assert "2" in response.header("DAV")
