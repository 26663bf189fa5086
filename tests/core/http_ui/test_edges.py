"""Edges of the HTTP UI: broken text, slow headers, too many event streams, slow RPC calls."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from core.config import Config
from core.engine import Engine
from core.events import LogEmitted
from tests.core.http_ui.conftest import ui_url
from tests.helpers import async_wait_for


async def test_lone_surrogate_in_params_is_422(client: httpx.AsyncClient) -> None:
    body = b'{"params": "!!fake.return_success message:\\ud800\\n", "topic": "t"}'
    response = await client.post(
        "/api/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"]


async def test_lone_surrogate_in_validate_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/validate",
        content=b'{"text": "!!\\udfff"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "body.text: Value error, not valid Unicode: a lone surrogate U+DFFF at character 3"
    )


async def test_lone_surrogate_in_rpc_is_a_parse_error(client: httpx.AsyncClient) -> None:
    body = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "fake.return_success",'
        b' "params": {"message": "\\ud800"}}'
    )
    response = await client.post("/rpc", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32700
    assert "lone surrogate U+D800" in error["message"]


@pytest.fixture
async def edge_engine(engine_config: Config) -> AsyncIterator[Engine]:
    """An engine whose UI has short deadlines and few stream slots, so limits show quickly."""
    ui = replace(engine_config.ui, header_timeout=0.5, max_event_streams=2, rpc_timeout=0.3)
    async with Engine(replace(engine_config, enable_webdav=False, ui=ui)) as running:
        yield running


def _ui_address(engine: Engine) -> tuple[str, int]:
    host, port = ui_url(engine).removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _read_until_closed(reader: asyncio.StreamReader, seconds: float) -> bytes:
    async with asyncio.timeout(seconds):
        return await reader.read()


@pytest.mark.parametrize(
    "half",
    [b"GET /api/serv", b"GET /api/services HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "],
    ids=["request-line", "headers"],
)
async def test_half_sent_request_is_closed_after_the_header_timeout(
    edge_engine: Engine, half: bytes
) -> None:
    reader, writer = await asyncio.open_connection(*_ui_address(edge_engine))
    try:
        writer.write(half)
        await writer.drain()
        loop = asyncio.get_running_loop()
        sent = loop.time()
        answer = await _read_until_closed(reader, 0.5 + 2.0)
        took = loop.time() - sent
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert 0.4 <= took < 2.5


async def test_dribbled_headers_do_not_extend_the_deadline(edge_engine: Engine) -> None:
    reader, writer = await asyncio.open_connection(*_ui_address(edge_engine))
    loop = asyncio.get_running_loop()
    opened = loop.time()
    try:
        # A byte every 0.1 s: each one would restart a per-read timer; this deadline holds.
        for byte in b"GET /api/services HTTP/1.1\r\nHost: 127.0.0.1\r\n":
            if reader.at_eof() or loop.time() - opened > 2.0:
                break
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await reader.read(1)
                    break
        answer = await _read_until_closed(reader, 2.0)
    finally:
        writer.close()
    assert loop.time() - opened < 2.5
    assert b"200 OK" not in answer


async def test_idle_connection_between_requests_is_closed_too(edge_engine: Engine) -> None:
    reader, writer = await asyncio.open_connection(*_ui_address(edge_engine))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")  # the next request, half sent
        await writer.drain()
        rest = await _read_until_closed(reader, 0.5 + 2.0)
    finally:
        writer.close()
    assert b"408 Request Timeout" in rest


async def test_a_whole_request_is_answered(edge_engine: Engine) -> None:
    async with httpx.AsyncClient(base_url=ui_url(edge_engine), timeout=5) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_event_streams_beyond_the_cap_get_503(edge_engine: Engine) -> None:
    ui = edge_engine.services["ui"]
    async with httpx.AsyncClient(base_url=ui_url(edge_engine), timeout=5) as http:
        async with contextlib.AsyncExitStack() as streams:
            for _ in range(2):
                response = await streams.enter_async_context(http.stream("GET", "/events"))
                assert response.status_code == 200
            refused = await http.get("/events")
            assert refused.status_code == 503
            assert "ui.max_event_streams is 2" in refused.json()["detail"]
            assert refused.headers["Retry-After"] == "5"
            assert "2 event stream(s)" in ui.detail()
        # Closed streams give their slots back.
        await async_wait_for(lambda: "0 event stream(s)" in ui.detail(), 5, "slots back")
        async with http.stream("GET", "/events") as again:
            assert again.status_code == 200


async def test_rpc_call_past_the_timeout_is_an_error_and_logged(edge_engine: Engine) -> None:
    with edge_engine.bus.subscribe(maxsize=10_000) as events:
        async with httpx.AsyncClient(base_url=ui_url(edge_engine), timeout=5) as http:
            slow = {"jsonrpc": "2.0", "id": 4, "method": "fake.sleep", "params": {"seconds": 30}}
            started = time.monotonic()
            response = await http.post("/rpc", json=slow)
            assert time.monotonic() - started < 3
            assert response.status_code == 200
            assert response.json() == {
                "jsonrpc": "2.0",
                "id": 4,
                "error": {
                    "code": -32000,
                    "message": "Server error: the call did not end within 0.3 s",
                },
            }
            quick = {"jsonrpc": "2.0", "id": 5, "method": "fake.return_success", "params": {}}
            assert (await http.post("/rpc", json=quick)).json()["result"] == "ok"
        lines: list[str] = []
        async with asyncio.timeout(5):
            while len(lines) < 2:
                batch = await events.get_batch()
                lines += [
                    e.message for e in batch if isinstance(e, LogEmitted) and e.source == "rpc"
                ]
    assert lines[0].startswith("rpc fake.sleep timed out in ")
    assert lines[1].startswith("rpc fake.return_success ok in ")
    assert lines[1].endswith(" ms")
