"""The guard over real HTTP: token, Host (DNS rebinding), cross-site requests, body size."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from core.config import Config
from core.engine import Engine
from core.events.bus import EventBus
from core.http_ui.guard import GuardRules, split_host
from core.http_ui.service import HttpUIService
from core.services import ServiceStartError, ServiceState
from tests.core.http_ui.conftest import ui_url

TOKEN = "s3cret-token"
JOB = {"params": "!!fake.return_success message:hi\n", "topic": "t"}


def ui_config(config: Config, **ui: object) -> Config:
    return replace(config, enable_webdav=False, ui=replace(config.ui, **ui))  # type: ignore[arg-type]


@pytest.fixture
async def token_engine(engine_config: Config) -> AsyncIterator[Engine]:
    async with Engine(ui_config(engine_config, token=TOKEN)) as running:
        yield running


async def test_beyond_loopback_without_token_refuses_to_start(engine_config: Config) -> None:
    config = ui_config(engine_config, host="0.0.0.0")
    service = HttpUIService(config, EventBus(), Engine(config, services=[]).api)
    with pytest.raises(ServiceStartError) as info:
        await service.start()
    assert str(info.value) == ("ui on 0.0.0.0 needs ui.token; refusing an open API beyond loopback")
    assert service.state is ServiceState.FAILED


async def test_busy_port_is_a_clear_error(engine_config: Config) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = ui_config(engine_config, port=port)
        service = HttpUIService(config, EventBus(), Engine(config, services=[]).api)
        with pytest.raises(ServiceStartError) as info:
            await service.start()
    assert str(info.value).startswith(f"port {port} on 127.0.0.1 is already in use")
    assert "--ui-port" in str(info.value)


async def test_beyond_loopback_with_token_asks_for_it(engine_config: Config) -> None:
    async with Engine(ui_config(engine_config, host="0.0.0.0", token=TOKEN)) as engine:
        port = engine.services["ui"].address().rsplit(":", 1)[1].strip("/")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/api/jobs")).status_code == 401
            ok = await http.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200


async def test_token_is_required_except_for_the_page_and_probes(token_engine: Engine) -> None:
    async with httpx.AsyncClient(base_url=ui_url(token_engine)) as http:
        for path in ("/api/jobs", "/api/services", "/events", "/metrics"):
            response = await http.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        assert (await http.post("/api/jobs", json=JOB)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.get("/api/jobs", headers=wrong)).status_code == 401
        # Not in the URL either: a token in the query string is no token.
        assert (await http.get(f"/api/jobs?token={TOKEN}")).status_code == 401
        for path in ("/", "/healthz", "/openapi.json", "/static/app.js"):
            assert (await http.get(path)).status_code == 200, path
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.post("/api/jobs", json=JOB, headers=good)).status_code == 201
        # With a token, a cross-site Origin does not matter: another site cannot know it.
        cross = {**good, "Origin": "https://evil.example"}
        assert (await http.post("/api/jobs", json=JOB, headers=cross)).status_code == 201
        schema = (await http.get("/openapi.json")).json()
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_host_header_must_name_this_server(client: httpx.AsyncClient) -> None:
    rebound = await client.get("/api/jobs", headers={"Host": "evil.example:8090"})
    assert rebound.status_code == 421
    assert (await client.get("/", headers={"Host": "attacker.test"})).status_code == 421
    port = str(client.base_url.port)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert (await client.get("/healthz", headers={"Host": host})).status_code == 200, host


async def test_cross_site_post_without_token_is_refused(client: httpx.AsyncClient) -> None:
    evil = {"Origin": "https://evil.example"}
    assert (await client.post("/api/jobs", json=JOB, headers=evil)).status_code == 403
    assert (await client.post("/rpc", json={}, headers=evil)).status_code == 403
    assert (await client.post("/api/jobs", json=JOB, headers={"Origin": "null"})).status_code == 403
    site = {"Sec-Fetch-Site": "cross-site"}
    assert (await client.post("/api/jobs", json=JOB, headers=site)).status_code == 403
    # Reading is harmless (the browser keeps the answer from the other site).
    assert (await client.get("/api/jobs", headers=evil)).status_code == 200
    own = {"Origin": str(client.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/api/jobs", json=JOB, headers=own)).status_code == 201
    # Scripts and curl send neither header; CSRF needs a browser, so they pass.
    assert (await client.post("/api/jobs", json=JOB)).status_code == 201


async def test_body_over_the_limit_is_413(engine_config: Config) -> None:
    config = ui_config(engine_config, max_body_bytes=1000)
    async with Engine(config) as engine, httpx.AsyncClient(base_url=ui_url(engine)) as http:
        big = {"params": "x" * 2000, "topic": "t"}
        response = await http.post("/api/jobs", json=big)
        assert response.status_code == 413
        assert "larger than 1000 bytes" in response.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 400

        streamed = await http.post("/rpc", content=chunks())
        assert streamed.status_code == 413
        assert (await http.post("/api/jobs", json=JOB)).status_code == 201


def _post_raw(url: str, body: bytes) -> bytes:
    """POST `body` over a plain socket and read the whole answer (the server closes)."""
    address = httpx.URL(url)
    with socket.create_connection((address.host, address.port), timeout=30) as sock:
        head = (
            f"POST /api/jobs HTTP/1.1\r\nHost: {address.host}:{address.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("size", [64 << 10, 2 << 20])
async def test_a_body_over_the_limit_gets_its_413_not_a_reset(
    engine_config: Config, size: int
) -> None:
    # Closing with unread data makes the kernel send a reset, which can reach the client
    # before it reads the answer: the guard reads the refused body to its end first.
    config = ui_config(engine_config, max_body_bytes=1000)
    async with Engine(config) as engine:
        for _ in range(3):
            answer = await asyncio.to_thread(_post_raw, ui_url(engine), b"x" * size)
            assert answer.startswith(b"HTTP/1.1 413 ")
            assert b"larger than 1000 bytes" in answer


def test_guard_rules() -> None:
    assert split_host("[::1]:8090") == "[::1]"
    assert split_host("Example.COM:80") == "example.com"
    rules = GuardRules.build("127.0.0.1", "", 0)
    assert rules.host_ok("127.0.0.1:1")
    assert rules.host_ok("[::1]:2")
    assert rules.host_ok("localhost")
    assert not rules.host_ok("")
    assert not rules.host_ok("localhost.evil.example")
    assert GuardRules.build("127.0.0.1", "", 0, ["proxy.lan"]).host_ok("proxy.lan:443")
    rules = GuardRules.build("127.0.0.1", TOKEN, 0)
    assert rules.token_ok(f"Bearer {TOKEN}")
    assert rules.token_ok(f"bearer {TOKEN}")
    assert not rules.token_ok(TOKEN)
    assert not rules.token_ok(f"Basic {TOKEN}")


async def test_listening_socket_says_tcp(ui_engine: Engine) -> None:
    # asyncio sets TCP_NODELAY on accepted connections only for a socket with proto TCP;
    # without it each keep-alive response stalls ~40 ms on a delayed ACK.
    server = ui_engine.services["ui"]._server  # type: ignore[attr-defined]
    (sock,) = server.servers[0].sockets
    assert sock.proto == socket.IPPROTO_TCP


async def test_a_batch_over_the_body_limit_is_413(engine_config: Config) -> None:
    config = ui_config(engine_config, max_body_bytes=1000)
    async with Engine(config) as engine, httpx.AsyncClient(base_url=ui_url(engine)) as http:
        batch = [{"params": "!!core.echo\n", "topic": "t"}] * 40
        response = await http.post("/api/jobs/batch", json=batch)
        assert response.status_code == 413
        assert (await http.post("/api/jobs/batch", json=batch[:3])).status_code == 201
