"""Traversal and symlink corpus: no request reads or writes a byte outside the root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.webdav.dav import PASSWORD, USER, RunningDav, dav_config

SECRET = b"SENTINEL-outside-the-root\n"

# Request targets sent byte for byte; the client never normalises them.
CORPUS = [
    "/../outside/sentinel.txt",
    "/../../../../../../etc/passwd",
    "/%2e%2e/outside/sentinel.txt",
    "/%2E%2E/outside/sentinel.txt",
    "/.%2e/outside/sentinel.txt",
    "/%252e%252e/outside/sentinel.txt",
    "/%252e%252e%252foutside%252fsentinel.txt",
    "/..%5coutside%5csentinel.txt",
    "/..\\outside\\sentinel.txt",
    "/..%2foutside%2fsentinel.txt",
    "/sub/../../outside/sentinel.txt",
    "/sub/%2e%2e/%2e%2e/outside/sentinel.txt",
    "/sub/./../../outside/sentinel.txt",
    "//outside/sentinel.txt",
    "/%2fetc%2fpasswd",
    "/sentinel.txt%00.txt",
    "/escape/sentinel.txt",
    "/escape/new.txt",
    "/escape/",
    "/link.txt",
    "/sub/deeplink/sentinel.txt",
]


@pytest.fixture
def setup(short_tmp: Path) -> Iterator[tuple[RunningDav, Path]]:
    root = short_tmp / "root"
    outside = short_tmp / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "sentinel.txt").write_bytes(SECRET)
    (root / "victim.txt").write_bytes(b"inside\n")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "link.txt").symlink_to(outside / "sentinel.txt")
    (root / "sub" / "deeplink").symlink_to(outside, target_is_directory=True)
    server = RunningDav(dav_config(short_tmp, users=True), auth=(USER, PASSWORD))
    try:
        yield server, short_tmp
    finally:
        server.close()


def snapshot_outside(base: Path, root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file and folder under `base` except the share and the service's own state.

    The state (`data/webdav-state`: the dead-property database) is the one place
    outside the root the service writes by design.
    """
    state: dict[str, tuple[bytes, int, int]] = {}
    skip = {root, base / "data" / "webdav-state"}
    for directory, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = [name for name in dirs if Path(directory) / name not in skip]
        for name in dirs + files:
            path = Path(directory) / name
            info = path.lstat()
            content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            state[str(path.relative_to(base))] = (content, info.st_mtime_ns, info.st_mode)
    return state


def check_response(method: str, target: str, status: int, body: bytes) -> None:
    # 502 is RFC 4918's answer to a Destination on another server (`//outside/...`).
    assert status < 500 or status == 502, f"{method} {target} -> {status}: {body[:200]!r}"
    assert SECRET not in body, f"{method} {target} leaked the sentinel"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PROPFIND", "PUT", "DELETE", "MKCOL", "LOCK"])
def test_corpus_never_leaves_the_root(setup: tuple[RunningDav, Path], method: str) -> None:
    dav, base = setup
    before = snapshot_outside(base, dav.root)
    body = b"EVIL\n" if method == "PUT" else None
    headers = {"Depth": "1"} if method == "PROPFIND" else {}
    if method == "LOCK":
        body = (
            b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
        )
    for target in CORPUS:
        response = dav.request(method, target, body, headers)
        check_response(method, target, response.status, response.body)
        if method in ("GET", "HEAD", "PROPFIND"):
            assert response.status >= 400, f"{method} {target} -> {response.status}"
    assert snapshot_outside(base, dav.root) == before


@pytest.mark.parametrize("method", ["MOVE", "COPY"])
def test_destination_header_never_leaves_the_root(
    setup: tuple[RunningDav, Path], method: str
) -> None:
    dav, base = setup
    before = snapshot_outside(base, dav.root)
    origin = f"http://127.0.0.1:{dav.port}"
    for target in CORPUS:
        for destination in (origin + target, target):
            (dav.root / "victim.txt").write_bytes(b"inside\n")
            response = dav.request(
                method, "/victim.txt", headers={"Destination": destination, "Overwrite": "T"}
            )
            check_response(method, destination, response.status, response.body)
        # And the corpus as the source, with a harmless destination inside the root.
        response = dav.request(method, target, headers={"Destination": origin + "/got.txt"})
        check_response(method, target, response.status, response.body)
        # Earlier rounds may have made a file literally named like the target inside the
        # root; copying that is fine, copying the sentinel in is not.
        got = dav.root / "got.txt"
        assert not got.exists() or SECRET not in got.read_bytes(), f"{method} {target}"
        got.unlink(missing_ok=True)
    assert snapshot_outside(base, dav.root) == before


def test_symlinks_inside_the_root_are_not_listed_or_followed(
    setup: tuple[RunningDav, Path],
) -> None:
    dav, _ = setup
    listing = dav.request("PROPFIND", "/", headers={"Depth": "1"})
    assert listing.status == 207
    assert b"victim.txt" in listing.body
    assert b"escape" not in listing.body
    assert b"link.txt" not in listing.body
    assert dav.request("GET", "/link.txt").status == 403
    assert dav.request("GET", "/escape/sentinel.txt").status == 403


def test_plain_names_with_dots_still_work(setup: tuple[RunningDav, Path]) -> None:
    dav, _ = setup
    for name in ("/..hidden", "/a..b.txt", "/%252e%252e"):
        assert dav.request("PUT", name, b"ok").status == 201, name
        assert dav.request("GET", name).body == b"ok"
    assert (dav.root / "%2e%2e").read_bytes() == b"ok"
