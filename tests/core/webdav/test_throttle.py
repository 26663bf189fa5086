"""Failed WebDAV logins are throttled per client address: 429 with Retry-After."""

from __future__ import annotations

import base64
import http.client

from core.webdav.auth import LOGIN_FAILURES, LOGIN_WINDOW, LoginThrottle
from tests.core.webdav.dav import PASSWORD, USER, RunningDav


def get(port: int, auth: tuple[str, str], source: str = "127.0.0.1") -> http.client.HTTPResponse:
    """GET / with Basic credentials, from `source` (any 127.x address reaches loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    conn.request("GET", "/", headers={"Authorization": f"Basic {token}"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_repeated_failures_get_429_with_retry_after(dav_auth: RunningDav) -> None:
    for attempt in range(LOGIN_FAILURES):
        assert get(dav_auth.port, (USER, f"guess-{attempt}")).status == 401
    throttled = get(dav_auth.port, (USER, PASSWORD))
    # Even the right password: otherwise the guessing would go on unthrottled.
    assert throttled.status == 429
    assert 1 <= int(throttled.getheader("Retry-After", "")) <= LOGIN_WINDOW
    assert get(dav_auth.port, ("mallory", "x")).status == 429
    # Another client address is not affected.
    assert get(dav_auth.port, (USER, PASSWORD), source="127.0.0.2").status == 200


def test_a_malformed_header_counts_as_a_failure(dav_auth: RunningDav) -> None:
    for _ in range(LOGIN_FAILURES):
        response = dav_auth.request("GET", "/", headers={"Authorization": "Basic !!!"}, auth=False)
        assert response.status == 401
    assert get(dav_auth.port, (USER, PASSWORD)).status == 429


def test_requests_without_credentials_are_not_failures(dav_auth: RunningDav) -> None:
    for _ in range(LOGIN_FAILURES * 2):
        assert dav_auth.request("GET", "/", auth=False).status == 401
    assert get(dav_auth.port, (USER, PASSWORD)).status == 200


def test_the_window_slides() -> None:
    throttle = LoginThrottle(failures=3, window=10.0)
    for t in (0.0, 1.0, 2.0):
        assert throttle.retry_after("a", t) == 0
        throttle.failed("a", t)
    assert throttle.retry_after("a", 2.5) == 7.5  # until the failure at 0.0 expires
    assert throttle.retry_after("b", 2.5) == 0
    assert throttle.retry_after("a", 10.0) == 0
    throttle.failed("a", 10.0)
    assert throttle.retry_after("a", 10.5) == 0.5  # 1.0, 2.0 and 10.0 are in the window
    assert throttle.retry_after("a", 30.0) == 0


def test_the_table_of_addresses_is_bounded() -> None:
    throttle = LoginThrottle(failures=2, window=60.0, max_addresses=10)
    for i in range(100):
        throttle.failed(f"10.0.0.{i}", float(i))
    assert len(throttle._seen) <= 10
    throttle.failed("10.0.0.99", 100.0)
    assert throttle.retry_after("10.0.0.99", 100.0) > 0
