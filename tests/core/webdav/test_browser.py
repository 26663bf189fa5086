"""DNS rebinding and cross-site reads against the share, replayed in headless Chromium."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from core.events.bus import EventBus
from core.webdav.provider import is_partial_upload
from core.webdav.service import WebDAVService
from tests.browser import chromium, needs_chromium
from tests.core.webdav.dav import dav_config
from tests.helpers import free_port

pytestmark = needs_chromium

EVIL = "evil.example"
SECRET = b'{"job_id": 1, "result": "the secret result"}'
# The attacker's page. Loaded from evil.example:<port> while the attacker's server held
# that port, its script then talks to the same origin, which is now the share.
ATTACK_PAGE = b"""<!doctype html><title>rebind</title><script>
async function attempt(method, path, body) {
  try {
    const response = await fetch(path, {method, body});
    return {status: response.status, body: await response.text()};
  } catch (error) {
    return {status: 0, body: String(error)};
  }
}
async function attack() {
  return {
    put: await attempt("PUT", "/inbox/x.hero", "!!fake.return_success message:pwned\\n"),
    get: await attempt("GET", "/inbox/x.hero"),
    result: await attempt("GET", "/inbox/submitted/job.1.result.json"),
    listing: await attempt("PROPFIND", "/inbox/"),
  };
}
</script>"""


class _Page(BaseHTTPRequestHandler):
    """Serves one page to whoever asks, then closes (no keep-alive to the old owner)."""

    page = ATTACK_PAGE

    def do_GET(self) -> None:
        body = self.page if self.path == "/" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reports what matters."""


class PageServer:
    """A tiny HTTP server on 127.0.0.1:port, in a thread."""

    def __init__(self, port: int, page: bytes) -> None:
        handler = type("Handler", (_Page,), {"page": page})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    # evil.example resolves to 127.0.0.1, as the attacker's DNS would answer once the
    # page has loaded; --host-resolver-rules does that without any DNS server.
    async with chromium([f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"]) as running:
        yield running


@pytest.fixture
def share(short_tmp: Path) -> Path:
    root = short_tmp / "root"
    (root / "inbox" / "submitted").mkdir(parents=True)
    (root / "inbox" / "submitted" / "job.1.result.json").write_bytes(SECRET)
    return root


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def rebind(browser: Browser, short_tmp: Path, flags: dict[str, Any]) -> dict[str, Any]:
    """Load the page from evil.example:port, hand the port to the share, run the attack."""
    port = free_port()
    pages = PageServer(port, ATTACK_PAGE)
    context = await browser.new_context()
    try:
        tab = await context.new_page()
        await tab.goto(f"http://{EVIL}:{port}/")
        assert await tab.title() == "rebind"
        pages.close()
        config = dav_config(short_tmp, {"webdav.port": port, **flags})
        service = WebDAVService(config, EventBus())
        await service.start()
        try:
            result: dict[str, Any] = await tab.evaluate("attack()")
        finally:
            await service.stop()
    finally:
        pages.close()
        await context.close()
    return result


async def test_a_rebound_page_can_neither_write_nor_read(
    browser: Browser, short_tmp: Path, share: Path
) -> None:
    before = files(share)
    result = await rebind(browser, short_tmp, {})
    assert {name: r["status"] for name, r in result.items()} == {
        "put": 421,
        "get": 421,
        "result": 421,
        "listing": 421,
    }, result
    assert all("secret" not in r["body"] for r in result.values())
    # No .hero file, not even a hidden partial upload.
    assert files(share) == before
    assert not any(is_partial_upload(Path(name).name) for name in files(share))


async def test_the_replay_reaches_the_share_when_the_name_is_trusted(
    browser: Browser, short_tmp: Path, share: Path
) -> None:
    # The control: with the name in webdav.allowed_hosts (as for a reverse proxy), the
    # same page gets through, so the 421 above is the guard's doing, not the harness's.
    result = await rebind(browser, short_tmp, {"webdav.allowed_hosts": [EVIL]})
    assert result["put"]["status"] == 201, result
    assert result["result"]["body"] == SECRET.decode()
    assert (share / "inbox" / "x.hero").read_bytes() == b"!!fake.return_success message:pwned\n"


async def test_another_site_cannot_load_the_share_files(
    browser: Browser, short_tmp: Path, share: Path
) -> None:
    (share / "data.js").write_bytes(b'window.leak = "the secret result";')
    config = dav_config(short_tmp)
    service = WebDAVService(config, EventBus())
    await service.start()
    page = (
        f'<!doctype html><title>embed</title><script src="http://127.0.0.1:{service.port}'
        f'/data.js"></script>'
    ).encode()
    pages = PageServer(free_port(), page)
    context = await browser.new_context()
    try:
        tab = await context.new_page()
        await tab.goto(f"http://{EVIL}:{pages.httpd.server_address[1]}/")
        # The script tag's load has settled by the load event; it must not have run.
        assert await tab.evaluate("window.leak === undefined")
    finally:
        await context.close()
        pages.close()
        await service.stop()
